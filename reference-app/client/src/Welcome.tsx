import { type FormEvent, useState } from 'react';
import { api, errorText } from './api';

/** First visit: pick a display name, or log in to an account. */
export function Welcome({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [mode, setMode] = useState<'name' | 'login'>('name');
  return (
    <div className="welcome">
      <h1>PostgreSQL Chat</h1>
      {mode === 'name' ? (
        <NameForm onSignedIn={onSignedIn} onLogin={() => setMode('login')} />
      ) : (
        <LoginForm onSignedIn={onSignedIn} onBack={() => setMode('name')} />
      )}
    </div>
  );
}

function NameForm({ onSignedIn, onLogin }: { onSignedIn: (t: string) => void; onLogin: () => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setError('Display name is required');
    if (trimmed.length > 32) return setError('Display name must be at most 32 characters');
    setBusy(true);
    try {
      const r = await api('POST', '/api/users', { displayName: trimmed });
      onSignedIn(r.token);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <>
      <form className="card" onSubmit={submit}>
        <h2>Choose a display name</h2>
        <input placeholder="Your display name" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
        <button type="submit" disabled={busy}>
          Enter chat
        </button>
        {error && <p className="error" role="alert">{error}</p>}
      </form>
      <p className="muted">
        Have an account?{' '}
        <button type="button" className="link" onClick={onLogin}>
          Log in
        </button>
      </p>
    </>
  );
}

function LoginForm({ onSignedIn, onBack }: { onSignedIn: (t: string) => void; onBack: () => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const r = await api('POST', '/api/auth/login', { username, password });
      onSignedIn(r.token);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="card" onSubmit={submit}>
      <h2>Log in to your account</h2>
      <input placeholder="Username" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
      <input type="password" placeholder="Password" value={password} onChange={(e) => setPassword(e.target.value)} />
      <button type="submit">Log in</button>
      <button type="button" className="secondary" onClick={onBack}>
        Back
      </button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
