import { useEffect, useRef } from 'react';

const IDLE_MS = 2 * 60 * 1000;
const EVENTS = ['mousemove', 'mousedown', 'keydown', 'wheel', 'touchstart', 'focus'];

/**
 * Auto-away, decided in the browser: after 2 minutes without keyboard, mouse or focus
 * activity an `online` user becomes `away` (marked automatic); the next activity makes them
 * `online` again. A status chosen by hand is never changed. Uses the page's own timers and
 * clock, so a test can fast-forward them.
 */
export function useIdleAway(me: any, setStatus: (status: string, auto?: boolean) => void) {
  const state = useRef({ me, lastActivity: Date.now() });
  state.current.me = me;

  useEffect(() => {
    const onActivity = () => {
      state.current.lastActivity = Date.now();
      const m = state.current.me;
      if (m && m.status === 'away' && m.autoAway) {
        state.current.me = { ...m, status: 'online', autoAway: false };
        setStatus('online');
      }
    };
    const check = () => {
      const m = state.current.me;
      if (m && m.status === 'online' && Date.now() - state.current.lastActivity >= IDLE_MS) {
        state.current.me = { ...m, status: 'away', autoAway: true };
        setStatus('away', true);
      }
    };
    for (const e of EVENTS) window.addEventListener(e, onActivity, true);
    const timer = setInterval(check, 1000);
    return () => {
      for (const e of EVENTS) window.removeEventListener(e, onActivity, true);
      clearInterval(timer);
    };
  }, [setStatus]);
}
