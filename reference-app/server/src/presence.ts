// Presence: a user is present while at least one socket of theirs is connected and their
// status is not `invisible`. The list goes to every socket on each change and every 15 s
// (so `Last active …` stays fresh; ages are computed here, immune to a client's clock).
import { eq } from 'drizzle-orm';
import { bug } from './bugs';
import { db, rows, schema } from './db';
import * as hub from './hub';
import * as v from './validate';

const sockets = new Map<number, number>();
const lastNoted = new Map<number, number>();

export function isConnected(userId: number): boolean {
  return (sockets.get(userId) ?? 0) > 0;
}

export async function presenceList() {
  const users = await rows(
    `SELECT id, display_name AS name, status, last_active_at AS "lastActiveAt",
            extract(epoch FROM now() - last_active_at)::int AS "lastActiveAgoS"
       FROM users ORDER BY lower(display_name), id`,
  );
  return users.map((u) => {
    const visible = bug('invisible-shows-online') || u.status !== 'invisible';
    const online = isConnected(u.id) && visible;
    const status = u.status === 'invisible' ? 'online' : u.status;
    return {
      id: u.id,
      name: u.name,
      online,
      status: online ? status : 'offline',
      lastActiveAt: u.lastActiveAt,
      lastActiveAgoS: Math.max(0, u.lastActiveAgoS),
    };
  });
}

let pushing: Promise<void> | null = null;
let again = false;

/** Sends the presence list to everyone (coalescing bursts of changes). */
export function pushPresence() {
  if (pushing) {
    again = true;
    return;
  }
  pushing = (async () => {
    try {
      hub.toAll('presence', { now: new Date().toISOString(), users: await presenceList() });
    } catch (err: any) {
      console.error(`presence push failed: ${err.message}`);
    } finally {
      pushing = null;
      if (again) {
        again = false;
        pushPresence();
      }
    }
  })();
}

async function touch(userId: number) {
  await db.update(schema.users).set({ lastActiveAt: new Date() }).where(eq(schema.users.id, userId));
}

export async function connected(userId: number) {
  sockets.set(userId, (sockets.get(userId) ?? 0) + 1);
  if (sockets.get(userId) === 1) {
    await touch(userId);
    pushPresence();
  }
}

export async function disconnected(userId: number) {
  const left = (sockets.get(userId) ?? 1) - 1;
  if (left > 0) {
    sockets.set(userId, left);
    return;
  }
  sockets.delete(userId);
  await touch(userId);
  pushPresence();
}

/** Activity (a message, some input) moves `last active`, at most every 20 s per user. */
export function noteActivity(userId: number) {
  const now = Date.now();
  if (now - (lastNoted.get(userId) ?? 0) < 20_000) return;
  lastNoted.set(userId, now);
  touch(userId).catch((err) => console.error(`last-active update failed: ${err.message}`));
}

export async function setStatus(userId: number, body: any) {
  const status = v.status(body?.status);
  const autoAway = status === 'away' && body?.auto === true;
  await db
    .update(schema.users)
    .set({ status, autoAway, lastActiveAt: new Date() })
    .where(eq(schema.users.id, userId));
  hub.toUser(userId, 'status', { status, autoAway });
  pushPresence();
  return { status, autoAway };
}
