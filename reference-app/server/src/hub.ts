// Where pushed events go. Every socket of user U is in `user:U`; every socket of a member
// of room R is in `room:R`. Without the app's socket handlers (CHAT_SHAPE), nothing is sent.
import type { Server } from 'socket.io';

let io: Server | null = null;

export function attach(server: Server) {
  io = server;
}

export const userChannel = (userId: number) => `user:${userId}`;
export const roomChannel = (roomId: number) => `room:${roomId}`;

export function toUser(userId: number, event: string, payload: unknown) {
  io?.to(userChannel(userId)).emit(event, payload);
}

export function toRoom(roomId: number, event: string, payload: unknown) {
  io?.to(roomChannel(roomId)).emit(event, payload);
}

export function toAll(event: string, payload: unknown) {
  io?.emit(event, payload);
}

/** Subscribe (or unsubscribe) every socket of a user to a room's channel. */
export function subscribe(userId: number, roomId: number, on: boolean) {
  if (!io) return;
  const sockets = io.in(userChannel(userId));
  if (on) sockets.socketsJoin(roomChannel(roomId));
  else sockets.socketsLeave(roomChannel(roomId));
}
