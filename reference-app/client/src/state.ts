// The chat's client state, in hooks. `Live` mirrors the values that socket handlers, which
// are registered once, need to read at the moment an event arrives.
import { type MutableRefObject, useCallback, useRef, useState } from 'react';
import type { Socket } from 'socket.io-client';
import { api } from './api';
import { bug } from './bug';

export type Msg = any;
export type Room = any;

export interface Live {
  openId: number | null;
  me: any;
  thread: any;
  rooms: Room[];
  offset: number | null;
  lastKey: { roomId: number; at: number };
  marked: Record<number, number>;
}

export const visible = () => document.visibilityState === 'visible';
const LAST_ROOM = 'chat.lastRoom';

export function lastOpenRoom(): number {
  return Number(sessionStorage.getItem(LAST_ROOM) || localStorage.getItem(LAST_ROOM));
}

/** The room list; overlapping reloads answer with the newest one's result. */
export function useRooms(live: MutableRefObject<Live>) {
  const [rooms, setRooms] = useState<Room[]>([]);
  const request = useRef(0);
  const latest = useRef<Promise<Room[]> | null>(null);
  const refreshRooms = useCallback((): Promise<Room[]> => {
    const ticket = ++request.current;
    const load: Promise<Room[]> = api('GET', '/api/rooms').then((list: Room[]) => {
      if (ticket !== request.current && latest.current) return latest.current;
      live.current.rooms = list;
      setRooms(list.map((r: Room) => (r.id === live.current.openId && visible() ? { ...r, unread: 0 } : r)));
      return list;
    });
    latest.current = load;
    return load;
  }, [live]);
  return { rooms, setRooms, refreshRooms };
}

/** Who is typing, per room; an entry expires 5 s after its last signal. */
export function useTyping() {
  const [typing, setTyping] = useState<Record<number, Record<number, string>>>({});
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const typingSeen = useCallback((roomId: number, userId: number, name: string | null) => {
    const key = `${roomId}:${userId}`;
    clearTimeout(timers.current.get(key));
    setTyping((t) => {
      const inRoom = { ...(t[roomId] ?? {}) };
      if (name === null) delete inRoom[userId];
      else inRoom[userId] = name;
      return { ...t, [roomId]: inRoom };
    });
    if (name !== null && !bug('typing-never-clears')) {
      timers.current.set(key, setTimeout(() => typingSeen(roomId, userId, null), 5000));
    }
  }, []);
  return { typing, typingSeen };
}

/** The open room: its messages, members, pending messages, thread and edit history. */
export function useOpenRoom(live: MutableRefObject<Live>, socket: MutableRefObject<Socket | null>, setRooms: (f: (rs: Room[]) => Room[]) => void, fail: (err: unknown) => void) {
  const [openId, setOpenId] = useState<number | null>(null);
  const [messages, setMessages] = useState<Msg[]>([]);
  const [members, setMembers] = useState<any[]>([]);
  const [scheduled, setScheduled] = useState<any[]>([]);
  const [thread, setThread] = useState<any | null>(null);
  const [editHistory, setEditHistory] = useState<any | null>(null);

  /** The open room, in a visible tab, has been seen up to `messageId`. */
  const markRead = useCallback((roomId: number, messageId: number) => {
    if (!visible() || roomId !== live.current.openId) return;
    const room = live.current.rooms.find((r: Room) => r.id === roomId);
    if (room && !room.isMember) return;
    if ((live.current.marked[roomId] ?? 0) >= messageId) return;
    live.current.marked[roomId] = messageId;
    socket.current?.emit('mark_read', { roomId, messageId });
    setRooms((rs) => rs.map((r) => (r.id === roomId ? { ...r, unread: 0 } : r)));
  }, [live, socket, setRooms]);

  const loadRoom = useCallback(async (roomId: number) => {
    const [history, memberList, pending] = await Promise.all([
      api('GET', `/api/rooms/${roomId}/messages`),
      api('GET', `/api/rooms/${roomId}/members`),
      api('GET', `/api/rooms/${roomId}/scheduled`),
    ]);
    if (live.current.openId !== roomId) return;
    setMessages((ms) => [...history, ...ms.filter((m: Msg) => !history.some((h: Msg) => h.id === m.id))]);
    setMembers(memberList);
    setScheduled(pending);
    const last = history[history.length - 1];
    if (last) markRead(roomId, last.id);
  }, [live, markRead]);

  const openRoom = useCallback(async (roomId: number | null) => {
    setOpenId(roomId);
    live.current.openId = roomId;
    setMessages([]);
    setMembers([]);
    setScheduled([]);
    setThread(null);
    setEditHistory(null);
    if (roomId === null) return;
    live.current.marked[roomId] = 0;
    sessionStorage.setItem(LAST_ROOM, String(roomId));
    localStorage.setItem(LAST_ROOM, String(roomId));
    const room = live.current.rooms.find((r: Room) => r.id === roomId);
    if (room && !room.isMember) return;
    await loadRoom(roomId).catch(fail);
  }, [live, loadRoom, fail]);

  /** Applies a change to a message wherever it is shown (main list, thread). */
  const patchMessage = useCallback((id: number, patch: (m: Msg) => Msg) => {
    setMessages((ms) => ms.map((m: Msg) => (m.id === id ? patch(m) : m)));
    setThread((t: any) =>
      t && { ...t, parent: t.parent.id === id ? patch(t.parent) : t.parent, replies: t.replies.map((r: Msg) => (r.id === id ? patch(r) : r)) },
    );
  }, []);

  return {
    openId, messages, setMessages, members, setMembers, scheduled, setScheduled, thread, setThread,
    editHistory, setEditHistory, openRoom, markRead, patchMessage,
  };
}
