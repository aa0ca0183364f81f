import { useEffect, useState } from 'react';
import { api, getToken, setToken } from './api';
import { setBug } from './bug';
import { Chat } from './Chat';
import { Welcome } from './Welcome';

export function App() {
  const [token, setTokenState] = useState<string | null>(getToken());
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    api('GET', '/api/reference-bug')
      .then((r) => setBug(r.bug ?? null))
      .catch(() => setBug(null))
      .finally(() => setLoaded(true));
  }, []);

  const signIn = (t: string) => {
    setToken(t);
    setTokenState(t);
  };
  const signOut = () => {
    setToken(null);
    sessionStorage.clear();
    localStorage.removeItem('chat.lastRoom');
    setTokenState(null);
  };

  if (!loaded) return <div className="loading">Loading…</div>;
  if (!token) return <Welcome onSignedIn={signIn} />;
  return <Chat key={token} onSignedOut={signOut} />;
}
