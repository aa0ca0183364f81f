import { useCallback, useEffect, useRef, useState } from 'react';
import { io, type Socket } from 'socket.io-client';
import { api, ApiError, errorText, getToken, SERVER_URL } from './api';
import { bug } from './bug';
import { listen, type Store } from './events';
import { Header } from './Header';
import { useIdleAway } from './idle';
import { RoomView } from './RoomView';
import { Sidebar } from './Sidebar';
import { type Live, lastOpenRoom, type Room, useOpenRoom, useRooms, useTyping, visible } from './state';
import { UserPanel } from './UserPanel';

export type { Msg, Room } from './state';
export type Ctx = any;

/** The signed-in app: state kept in sync with the server through Socket.IO events. */
export function Chat({ onSignedOut }: { onSignedOut: () => void }) {
  const [me, setMe] = useState<any>(null);
  const [users, setUsers] = useState<{ list: any[]; at: number }>({ list: [], at: Date.now() });
  const [invitations, setInvitations] = useState<any[]>([]);
  const [drafts, setDrafts] = useState<Record<number, string>>({});
  const [notice, setNotice] = useState('');
  const [joinError, setJoinError] = useState('');
  const [offset, setOffset] = useState(0);
  const [, setTick] = useState(0);
  const socketRef = useRef<Socket | null>(null);
  const live = useRef<Live>({ openId: null, me: null, thread: null, rooms: [], offset: null, lastKey: { roomId: 0, at: 0 }, marked: {} });
  const fail = useCallback(
    (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      else console.warn(errorText(err));
    },
    [onSignedOut],
  );
  const { rooms, setRooms, refreshRooms } = useRooms(live);
  const { typing, typingSeen } = useTyping();
  const room = useOpenRoom(live, socketRef, setRooms, fail);
  live.current = { ...live.current, openId: room.openId, me, thread: room.thread, rooms };

  const bootstrap = useCallback(async () => {
    const b = await api('GET', '/api/bootstrap');
    // Seeded bug: the counts the server keeps are ignored when the page loads.
    if (bug('unread-lost-on-refresh')) b.rooms = b.rooms.map((r: Room) => ({ ...r, unread: 0 }));
    setMe(b.me);
    setRooms(b.rooms);
    live.current.rooms = b.rooms;
    setInvitations(b.invitations);
    setDrafts(b.drafts);
    setUsers({ list: b.users, at: Date.now() });
    // Server time minus page time, measured once: later reloads of the state (reconnects)
    // keep it, so that a page clock moved by a test moves every relative time with it.
    if (live.current.offset === null) {
      live.current.offset = Date.parse(b.now) - Date.now();
      setOffset(live.current.offset);
    }
    return b;
  }, [setRooms]);

  const store = useRef<Store>(null as unknown as Store);
  store.current = { live, setMe, setRooms, refreshRooms, setUsers, setInvitations, setDrafts, setNotice, typingSeen, room, fail, onSignedOut };
  useConnection(bootstrap, socketRef, store);
  useTicker(setTick);
  useSeenWhenVisible(live, room.markRead);

  const setStatus = useCallback(
    (status: string, auto = false) => {
      api('POST', '/api/status', { status, auto })
        .then((r) => setMe((m: any) => ({ ...m, ...r })))
        .catch(fail);
    },
    [fail],
  );
  useIdleAway(me, setStatus);

  if (!me) return <div className="loading">Loading…</div>;
  const ctx = {
    me, rooms, users, offset, drafts, socket: socketRef.current, fail, live, setDrafts, setMe, openRoom: room.openRoom,
    refreshRooms, setNotice, setJoinError, setScheduled: room.setScheduled, setThread: room.setThread,
    setEditHistory: room.setEditHistory, setMessages: room.setMessages, onSignedOut, setStatus,
  };
  const typists = Object.entries(typing[room.openId ?? -1] ?? {})
    .filter(([id]) => Number(id) !== me.id)
    .map(([, name]) => name);
  return (
    <div className="app">
      <Header ctx={ctx} />
      <div className="columns">
        <Sidebar ctx={ctx} openId={room.openId} invitations={invitations} joinError={joinError} />
        <RoomView
          ctx={ctx}
          room={rooms.find((r) => r.id === room.openId) ?? null}
          messages={room.messages}
          members={room.members}
          scheduled={room.scheduled}
          thread={room.thread}
          editHistory={room.editHistory}
          typists={typists}
          notice={notice}
        />
        <UserPanel ctx={ctx} />
      </div>
    </div>
  );
}

/** Loads the state, connects, and reopens the room this tab (or this browser) had open. */
function useConnection(bootstrap: () => Promise<any>, socketRef: { current: Socket | null }, store: { current: Store }) {
  useEffect(() => {
    let socket: Socket | null = null;
    let stopped = false;
    const { fail } = store.current;
    bootstrap()
      .then((b) => {
        if (stopped) return;
        socket = io(SERVER_URL, { auth: { token: getToken() } });
        socketRef.current = socket;
        listen(socket, store);
        let first = true;
        socket.on('connect', () => {
          if (!first) bootstrap().then(() => store.current.room.openRoom(store.current.live.current.openId)).catch(fail);
          first = false;
        });
        const last = lastOpenRoom();
        if (b.rooms.some((r: Room) => r.id === last)) store.current.room.openRoom(last);
      })
      .catch(fail);
    return () => {
      stopped = true;
      socket?.disconnect();
    };
  }, [bootstrap, socketRef, store]);
}

/** A re-render every second: countdowns and `Last active` ages. */
function useTicker(setTick: (f: (t: number) => number) => void) {
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 1000);
    return () => clearInterval(timer);
  }, [setTick]);
}

/** A tab that becomes visible has seen the open room's messages. */
function useSeenWhenVisible(live: { current: Live }, markRead: (roomId: number, messageId: number) => void) {
  useEffect(() => {
    const onVisible = () => {
      const openId = live.current.openId;
      if (!visible() || openId === null) return;
      api('GET', `/api/rooms/${openId}/messages`)
        .then((h: any[]) => h.length && markRead(openId, h[h.length - 1].id))
        .catch(() => {});
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [live, markRead]);
}
