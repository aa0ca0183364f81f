import { type FormEvent, useState } from 'react';
import { api, errorText } from './api';
import type { Ctx } from './Chat';

export function Header({ ctx }: { ctx: Ctx }) {
  const { me } = ctx;
  const [registering, setRegistering] = useState(false);
  const logout = async () => {
    await api('POST', '/api/auth/logout').catch(() => {});
    ctx.socket?.disconnect();
    ctx.onSignedOut();
  };
  return (
    <header className="header">
      <h1>PostgreSQL Chat</h1>
      <div className="me">
        <span className="me-name">{me.displayName}</span>
        {me.username && <span className="muted">{me.username}</span>}
        <label htmlFor="status-select">Status</label>
        <select id="status-select" value={me.status} onChange={(e) => ctx.setStatus(e.target.value)}>
          <option value="online">Online</option>
          <option value="away">Away</option>
          <option value="dnd">Do not disturb</option>
          <option value="invisible">Invisible</option>
        </select>
        {me.username ? (
          <button type="button" onClick={logout}>
            Log out
          </button>
        ) : (
          !registering && (
            <button type="button" onClick={() => setRegistering(true)}>
              Register
            </button>
          )
        )}
      </div>
      {registering && !me.username && <RegisterForm ctx={ctx} onClose={() => setRegistering(false)} />}
    </header>
  );
}

function RegisterForm({ ctx, onClose }: { ctx: Ctx; onClose: () => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!/^[A-Za-z0-9_]{3,20}$/.test(username.trim())) return setError('Username must be 3–20 letters, digits or underscores');
    if (password.length < 8) return setError('Password must be at least 8 characters');
    try {
      const r = await api('POST', '/api/auth/register', { username: username.trim(), password });
      ctx.setMe(r.user);
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="register card" onSubmit={submit}>
      <h2>Create an account</h2>
      <input placeholder="Username" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
      <input type="password" placeholder="Password" value={password} onChange={(e) => setPassword(e.target.value)} />
      <button type="submit">Create account</button>
      <button type="button" className="secondary" onClick={onClose}>
        Close
      </button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
