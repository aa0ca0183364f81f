// What the client does with each event the server pushes.
import type { MutableRefObject } from 'react';
import type { Socket } from 'socket.io-client';
import { bug } from './bug';
import { type Live, type Msg, type Room, visible } from './state';

export interface Store {
  live: MutableRefObject<Live>;
  setMe: (f: any) => void;
  setRooms: (f: (rs: Room[]) => Room[]) => void;
  refreshRooms: () => Promise<Room[]>;
  setUsers: (u: { list: any[]; at: number }) => void;
  setInvitations: (list: any[]) => void;
  setDrafts: (f: (d: Record<number, string>) => Record<number, string>) => void;
  setNotice: (text: string) => void;
  typingSeen: (roomId: number, userId: number, name: string | null) => void;
  room: any;
  fail: (err: unknown) => void;
  onSignedOut: () => void;
}

const updateRoom = (s: Store, roomId: number, patch: (r: Room) => Room) =>
  s.setRooms((rs) => rs.map((r) => (r.id === roomId ? patch(r) : r)));

function onMessage(s: Store, m: Msg) {
  const L = s.live.current;
  if (!bug('typing-never-clears')) s.typingSeen(m.roomId, m.userId, null);
  if (m.roomId === L.openId) {
    if (m.parentId === null || bug('thread-replies-in-main')) {
      s.room.setMessages((ms: Msg[]) => (ms.some((x) => x.id === m.id) ? ms : [...ms, m]));
    }
    if (L.thread && m.parentId === L.thread.parent.id) {
      s.room.setThread((t: any) =>
        t && t.parent.id === m.parentId && !t.replies.some((r: Msg) => r.id === m.id) ? { ...t, replies: [...t.replies, m] } : t,
      );
    }
  }
  if (m.roomId === L.openId && visible()) s.room.markRead(m.roomId, m.id);
  else if (m.parentId === null && m.userId !== L.me?.id) {
    updateRoom(s, m.roomId, (r) => (r.isMember ? { ...r, unread: r.unread + 1 } : r));
  }
}

/** Messages with from < id ≤ upTo, not by the reader, are now seen by them. */
function onReceipt(s: Store, e: any) {
  if (e.roomId !== s.live.current.openId) return;
  const add = (m: Msg) =>
    m.id > e.from && m.id <= e.upTo && m.userId !== e.userId && !m.seenBy.includes(e.name) ? { ...m, seenBy: [...m.seenBy, e.name] } : m;
  s.room.setMessages((ms: Msg[]) => ms.map(add));
}

async function onRoomsChanged(s: Store) {
  const list = await s.refreshRooms();
  const openId = s.live.current.openId;
  if (openId !== null && !list.some((r) => r.id === openId)) s.room.openRoom(null);
}

function onDraft(s: Store, e: any) {
  const L = s.live.current;
  // The user is typing in this very composer: the local text wins.
  if (e.roomId === L.openId && L.lastKey.roomId === e.roomId && Date.now() - L.lastKey.at < 1500) return;
  s.setDrafts((d) => ({ ...d, [e.roomId]: e.content }));
}

function handlers(get: () => Store): Record<string, (e: any) => void> {
  return {
    message: (m) => onMessage(get(), m),
    message_updated: (m) => get().room.patchMessage(m.id, (old: Msg) => ({ ...old, ...m })),
    message_deleted: (e) => {
      get().room.setMessages((ms: Msg[]) => ms.filter((m) => m.id !== e.id));
      get().room.setThread((t: any) => (t && t.parent.id === e.id ? null : t && { ...t, replies: t.replies.filter((r: Msg) => r.id !== e.id) }));
    },
    reactions: (e) => get().room.patchMessage(e.messageId, (m: Msg) => ({ ...m, reactions: e.reactions })),
    reply_count: (e) => get().room.patchMessage(e.messageId, (m: Msg) => ({ ...m, replyCount: e.replyCount })),
    receipt: (e) => onReceipt(get(), e),
    unread: (e) => {
      const seen = e.roomId === get().live.current.openId && visible();
      updateRoom(get(), e.roomId, (r) => ({ ...r, unread: seen ? 0 : e.count }));
    },
    rooms_changed: () => onRoomsChanged(get()).catch(get().fail),
    members: (e) => {
      if (e.roomId === get().live.current.openId) get().room.setMembers(e.members);
    },
    removed: (e) => {
      if (get().live.current.openId === e.roomId) get().room.openRoom(null);
      get().setNotice(e.banned ? `You were banned from ${e.roomName}` : `You were removed from ${e.roomName}`);
    },
    presence: (e) => get().setUsers({ list: e.users, at: Date.now() }),
    status: (e) => get().setMe((m: any) => m && { ...m, ...e }),
    me: (e) => get().setMe(e),
    invitations: (list) => get().setInvitations(list),
    draft: (e) => onDraft(get(), e),
    activity: (e) => updateRoom(get(), e.roomId, (r) => ({ ...r, activity: e.activity })),
    typing: (e) => get().typingSeen(e.roomId, e.userId, e.name),
    stop_typing: (e) => {
      if (!bug('typing-never-clears')) get().typingSeen(e.roomId, e.userId, null);
    },
    scheduled: (e) => {
      if (e.roomId === get().live.current.openId) get().room.setScheduled(e.pending);
    },
    connect_error: (err) => {
      if (err?.message === 'not signed in') get().onSignedOut();
    },
  };
}

/** Registers the handlers once; they read the latest store at the moment an event arrives. */
export function listen(socket: Socket, store: MutableRefObject<Store>) {
  for (const [event, handle] of Object.entries(handlers(() => store.current))) socket.on(event, handle);
}
