import { useCallback, useEffect, useRef, useState } from 'react';
import { io, type Socket } from 'socket.io-client';
import { api, ApiError, errorText, SERVER_URL, getToken } from './api';
import { bug } from './bug';
import { Header } from './Header';
import { RoomView } from './RoomView';
import { Sidebar } from './Sidebar';
import { UserPanel } from './UserPanel';
import { useIdleAway } from './idle';

export type Msg = any;
export type Room = any;

const visible = () => document.visibilityState === 'visible';
const LAST_ROOM = 'chat.lastRoom';

/** The signed-in app: state kept in sync with the server through Socket.IO events. */
export function Chat({ onSignedOut }: { onSignedOut: () => void }) {
  const [me, setMe] = useState<any>(null);
  const [rooms, setRooms] = useState<Room[]>([]);
  const [users, setUsers] = useState<{ list: any[]; at: number }>({ list: [], at: Date.now() });
  const [invitations, setInvitations] = useState<any[]>([]);
  const [drafts, setDrafts] = useState<Record<number, string>>({});
  const [openId, setOpenId] = useState<number | null>(null);
  const [messages, setMessages] = useState<Msg[]>([]);
  const [members, setMembers] = useState<any[]>([]);
  const [scheduled, setScheduled] = useState<any[]>([]);
  const [typing, setTyping] = useState<Record<number, Record<number, string>>>({});
  const [thread, setThread] = useState<any | null>(null);
  const [editHistory, setEditHistory] = useState<any | null>(null);
  const [notice, setNotice] = useState('');
  const [joinError, setJoinError] = useState('');
  const [offset, setOffset] = useState(0);
  const [, setTick] = useState(0);
  const socketRef = useRef<Socket | null>(null);
  const live = useRef({ openId, me, thread, rooms, lastKey: 0, marked: {} as Record<number, number> });
  live.current = { ...live.current, openId, me, thread, rooms };
  const typingTimers = useRef(new Map<string, ReturnType<typeof setTimeout>>());

  const fail = useCallback(
    (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      else console.warn(errorText(err));
    },
    [onSignedOut],
  );

  const refreshRooms = useCallback(async () => {
    const list = await api('GET', '/api/rooms');
    live.current.rooms = list;
    setRooms(list.map((r: Room) => (r.id === live.current.openId && visible() ? { ...r, unread: 0 } : r)));
    return list as Room[];
  }, []);

  const markRead = useCallback((roomId: number, messageId: number) => {
    if (!visible() || roomId !== live.current.openId) return;
    const room = live.current.rooms.find((r: Room) => r.id === roomId);
    if (room && !room.isMember) return;
    if ((live.current.marked[roomId] ?? 0) >= messageId) return;
    live.current.marked[roomId] = messageId;
    socketRef.current?.emit('mark_read', { roomId, messageId });
    setRooms((rs) => rs.map((r) => (r.id === roomId ? { ...r, unread: 0 } : r)));
  }, []);

  const openRoom = useCallback(
    async (roomId: number | null, opts: { skipHistory?: boolean } = {}) => {
      setOpenId(roomId);
      live.current.openId = roomId;
      setMessages([]);
      setMembers([]);
      setScheduled([]);
      setThread(null);
      setEditHistory(null);
      setJoinError('');
      if (roomId === null) return;
      live.current.marked[roomId] = 0;
      sessionStorage.setItem(LAST_ROOM, String(roomId));
      localStorage.setItem(LAST_ROOM, String(roomId));
      const room = live.current.rooms.find((r: Room) => r.id === roomId);
      if (room && !room.isMember) return;
      try {
        const [history, memberList, pending] = await Promise.all([
          opts.skipHistory ? Promise.resolve([]) : api('GET', `/api/rooms/${roomId}/messages`),
          api('GET', `/api/rooms/${roomId}/members`),
          api('GET', `/api/rooms/${roomId}/scheduled`),
        ]);
        if (live.current.openId !== roomId) return;
        setMessages((ms) => [...history, ...ms.filter((m: Msg) => !history.some((h: Msg) => h.id === m.id))]);
        setMembers(memberList);
        setScheduled(pending);
        const last = history[history.length - 1];
        if (last) markRead(roomId, last.id);
      } catch (err) {
        fail(err);
      }
    },
    [fail, markRead],
  );

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
    setOffset(Date.parse(b.now) - Date.now());
    return b;
  }, []);

  // Typing entries expire 5 s after the last signal.
  const typingSeen = useCallback((roomId: number, userId: number, name: string | null) => {
    const key = `${roomId}:${userId}`;
    clearTimeout(typingTimers.current.get(key));
    setTyping((t) => {
      const inRoom = { ...(t[roomId] ?? {}) };
      if (name === null) delete inRoom[userId];
      else inRoom[userId] = name;
      return { ...t, [roomId]: inRoom };
    });
    if (name !== null && !bug('typing-never-clears')) {
      typingTimers.current.set(key, setTimeout(() => typingSeen(roomId, userId, null), 5000));
    }
  }, []);

  const onMessage = useCallback(
    (m: Msg) => {
      const L = live.current;
      if (!bug('typing-never-clears')) typingSeen(m.roomId, m.userId, null);
      if (m.roomId === L.openId) {
        if (m.parentId === null || bug('thread-replies-in-main')) {
          setMessages((ms) => (ms.some((x: Msg) => x.id === m.id) ? ms : [...ms, m]));
        }
        if (L.thread && m.parentId === L.thread.parent.id) {
          setThread((t: any) =>
            t && t.parent.id === m.parentId && !t.replies.some((r: Msg) => r.id === m.id) ? { ...t, replies: [...t.replies, m] } : t,
          );
        }
      }
      const seenNow = m.roomId === L.openId && visible();
      if (seenNow) markRead(m.roomId, m.id);
      else if (m.parentId === null && m.userId !== L.me?.id) {
        setRooms((rs) => rs.map((r) => (r.id === m.roomId && r.isMember ? { ...r, unread: r.unread + 1 } : r)));
      }
    },
    [markRead, typingSeen],
  );

  const patchMessage = useCallback((id: number, patch: (m: Msg) => Msg) => {
    setMessages((ms) => ms.map((m: Msg) => (m.id === id ? patch(m) : m)));
    setThread((t: any) =>
      t && { ...t, parent: t.parent.id === id ? patch(t.parent) : t.parent, replies: t.replies.map((r: Msg) => (r.id === id ? patch(r) : r)) },
    );
  }, []);

  const onReceipt = useCallback((e: any) => {
    if (e.roomId !== live.current.openId) return;
    const add = (m: Msg) =>
      m.id > e.from && m.id <= e.upTo && m.userId !== e.userId && !m.seenBy.includes(e.name) ? { ...m, seenBy: [...m.seenBy, e.name] } : m;
    setMessages((ms) => ms.map(add));
  }, []);

  const onRemoved = useCallback(
    (e: any) => {
      if (live.current.openId === e.roomId) openRoom(null);
      setNotice(e.banned ? `You were banned from ${e.roomName}` : `You were removed from ${e.roomName}`);
    },
    [openRoom],
  );

  const onDraft = useCallback((e: any) => {
    const L = live.current;
    if (e.roomId === L.openId && Date.now() - L.lastKey < 1500) return;
    setDrafts((d) => ({ ...d, [e.roomId]: e.content }));
  }, []);

  const onRoomsChanged = useCallback(async () => {
    const list = await refreshRooms();
    const L = live.current;
    const open = list.find((r) => r.id === L.openId);
    if (L.openId !== null && !open) openRoom(null);
  }, [refreshRooms, openRoom]);

  const listen = useCallback(
    (s: Socket) => {
      s.on('message', onMessage);
      s.on('message_updated', (m: Msg) => patchMessage(m.id, (old) => ({ ...old, ...m })));
      s.on('message_deleted', (e: any) => {
        setMessages((ms) => ms.filter((m: Msg) => m.id !== e.id));
        setThread((t: any) => (t && t.parent.id === e.id ? null : t && { ...t, replies: t.replies.filter((r: Msg) => r.id !== e.id) }));
      });
      s.on('reactions', (e: any) => patchMessage(e.messageId, (m) => ({ ...m, reactions: e.reactions })));
      s.on('reply_count', (e: any) => patchMessage(e.messageId, (m) => ({ ...m, replyCount: e.replyCount })));
      s.on('receipt', onReceipt);
      s.on('unread', (e: any) => {
        const seen = e.roomId === live.current.openId && visible();
        setRooms((rs) => rs.map((r) => (r.id === e.roomId ? { ...r, unread: seen ? 0 : e.count } : r)));
      });
      s.on('rooms_changed', () => onRoomsChanged().catch(fail));
      s.on('members', (e: any) => {
        if (e.roomId === live.current.openId) setMembers(e.members);
      });
      s.on('removed', onRemoved);
      s.on('presence', (e: any) => {
        setUsers({ list: e.users, at: Date.now() });
        setOffset(Date.parse(e.now) - Date.now());
      });
      s.on('status', (e: any) => setMe((m: any) => m && { ...m, ...e }));
      s.on('me', (e: any) => setMe(e));
      s.on('invitations', setInvitations);
      s.on('draft', onDraft);
      s.on('activity', (e: any) => setRooms((rs) => rs.map((r) => (r.id === e.roomId ? { ...r, activity: e.activity } : r))));
      s.on('typing', (e: any) => typingSeen(e.roomId, e.userId, e.name));
      s.on('stop_typing', (e: any) => {
        if (!bug('typing-never-clears')) typingSeen(e.roomId, e.userId, null);
      });
      s.on('scheduled_changed', (e: any) => {
        if (e.roomId === live.current.openId) api('GET', `/api/rooms/${e.roomId}/scheduled`).then(setScheduled).catch(fail);
      });
      s.on('connect_error', (err) => {
        if (err.message === 'not signed in') onSignedOut();
      });
    },
    [onMessage, patchMessage, onReceipt, onRoomsChanged, onRemoved, onDraft, typingSeen, fail, onSignedOut],
  );

  // Start: load everything, connect, reopen the room this tab (or this browser) had open.
  useEffect(() => {
    let socket: Socket | null = null;
    let stopped = false;
    bootstrap()
      .then((b) => {
        if (stopped) return;
        socket = io(SERVER_URL, { auth: { token: getToken() } });
        socketRef.current = socket;
        listen(socket);
        let first = true;
        socket.on('connect', () => {
          if (!first) bootstrap().then(() => openRoom(live.current.openId)).catch(fail);
          first = false;
        });
        const last = Number(sessionStorage.getItem(LAST_ROOM) || localStorage.getItem(LAST_ROOM));
        if (b.rooms.some((r: Room) => r.id === last)) openRoom(last);
      })
      .catch(fail);
    return () => {
      stopped = true;
      socket?.disconnect();
    };
  }, [bootstrap, listen, openRoom, fail]);

  // Seconds tick: countdowns, `Last active` ages.
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 1000);
    return () => clearInterval(timer);
  }, []);

  // A tab that becomes visible sees the open room's messages.
  useEffect(() => {
    const onVisible = () => {
      const L = live.current;
      if (visible() && L.openId !== null) {
        api('GET', `/api/rooms/${L.openId}/messages`)
          .then((h: Msg[]) => h.length && markRead(L.openId as number, h[h.length - 1].id))
          .catch(() => {});
      }
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [markRead]);

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

  const openRoomObj = rooms.find((r) => r.id === openId) ?? null;
  const ctx = {
    me,
    rooms,
    users,
    offset,
    drafts,
    socket: socketRef.current,
    fail,
    live,
    setDrafts,
    setMe,
    openRoom,
    refreshRooms,
    setNotice,
    setJoinError,
    setScheduled,
    setThread,
    setEditHistory,
    setMessages,
    onSignedOut,
    setStatus,
  };
  const typists = Object.entries(typing[openId ?? -1] ?? {})
    .filter(([id]) => Number(id) !== me.id)
    .map(([, name]) => name);

  return (
    <div className="app">
      <Header ctx={ctx} />
      <div className="columns">
        <Sidebar ctx={ctx} openId={openId} invitations={invitations} joinError={joinError} />
        <RoomView
          ctx={ctx}
          room={openRoomObj}
          messages={messages}
          members={members}
          scheduled={scheduled}
          thread={thread}
          editHistory={editHistory}
          typists={typists}
          notice={notice}
        />
        <UserPanel ctx={ctx} />
      </div>
    </div>
  );
}

export type Ctx = any;
