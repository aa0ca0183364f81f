// The app's Socket.IO handlers. A socket authenticates with `auth: { token }`; it joins
// `user:<id>` and `room:<id>` of every room the user is a member of.
import type { Server, Socket } from 'socket.io';
import { userIdForToken } from './auth';
import { rows } from './db';
import { HttpError } from './errors';
import * as hub from './hub';
import * as msg from './messages';
import * as presence from './presence';
import { saveDraft } from './scheduled';
import * as v from './validate';

type Ack = ((answer: unknown) => void) | undefined;

/** Runs a handler; its result (or its error) is the acknowledgement. */
function answer(ack: Ack, work: () => Promise<unknown>) {
  work()
    .then((result) => (typeof ack === 'function' ? ack({ ok: true, ...(result as object) }) : undefined))
    .catch((err) => {
      if (!(err instanceof HttpError)) console.error(err);
      const error = err instanceof HttpError ? err.message : 'Internal server error';
      if (typeof ack === 'function') ack({ ok: false, error });
    });
}

function inRoom(socket: Socket, roomId: unknown): number | null {
  const id = Number(roomId);
  return Number.isInteger(id) && socket.rooms.has(hub.roomChannel(id)) ? id : null;
}

async function onConnection(socket: Socket) {
  const userId: number = socket.data.userId;
  socket.join(hub.userChannel(userId));
  const memberOf = await rows('SELECT room_id FROM room_members WHERE user_id = $1', [userId]);
  for (const { room_id } of memberOf) socket.join(hub.roomChannel(room_id));
  socket.on('disconnect', () => {
    presence.disconnected(userId).catch((err) => console.error(`presence update failed: ${err.message}`));
  });
  socket.on('send_message', (data, ack: Ack) =>
    answer(ack, async () => {
      const lifetime = v.lifetime(data?.lifetimeSeconds);
      const parentId = data?.parentId ? v.id(data.parentId, 'parentId') : null;
      const message = await msg.postMessage(userId, v.id(data?.roomId, 'roomId'), data?.content, { lifetime, parentId });
      return { message };
    }),
  );
  socket.on('typing', (data) => {
    const roomId = inRoom(socket, data?.roomId);
    if (roomId !== null) socket.to(hub.roomChannel(roomId)).emit('typing', { roomId, userId, name: socket.data.name });
  });
  socket.on('stop_typing', (data) => {
    const roomId = inRoom(socket, data?.roomId);
    if (roomId !== null) socket.to(hub.roomChannel(roomId)).emit('stop_typing', { roomId, userId });
  });
  socket.on('mark_read', (data, ack: Ack) =>
    answer(ack, () => msg.markRead(userId, v.id(data?.roomId, 'roomId'), v.id(data?.messageId, 'messageId')).then(() => ({}))),
  );
  socket.on('draft', (data, ack: Ack) =>
    answer(ack, () => saveDraft(userId, v.id(data?.roomId, 'roomId'), data?.content, socket).then(() => ({}))),
  );
  socket.on('activity', () => presence.noteActivity(userId));
  await presence.connected(userId);
}

export function installSockets(io: Server) {
  io.use(async (socket, next) => {
    try {
      const userId = await userIdForToken(socket.handshake.auth?.token);
      if (userId === null) return next(new Error('not signed in'));
      const [me] = await rows('SELECT display_name FROM users WHERE id = $1', [userId]);
      socket.data.userId = userId;
      socket.data.name = me?.display_name ?? '';
      next();
    } catch (err: any) {
      next(new Error(`session check failed: ${err.message}`));
    }
  });
  io.on('connection', (socket) => {
    onConnection(socket).catch((err) => console.error(`socket set-up failed: ${err.message}`));
  });
}
