// Scheduled messages: stored with their due time and posted by the server (every 500 ms
// it posts what fell due, including what fell due while it was down).
import { and, eq } from 'drizzle-orm';
import { bug } from './bugs';
import { db, rows, schema } from './db';
import { HttpError, notFound } from './errors';
import * as hub from './hub';
import { postMessage } from './messages';
import { membership, requireMember } from './rooms';
import * as v from './validate';

export async function pending(userId: number, roomId: number) {
  return rows(
    `SELECT id, room_id AS "roomId", content, send_at AS "sendAt" FROM scheduled_messages
      WHERE user_id = $1 AND room_id = $2 ORDER BY send_at, id`,
    [userId, roomId],
  );
}

const pushes = new Map<number, Promise<void>>();

/** Sends the author's pending list of the room to their tabs, one push after another. */
function changed(userId: number, roomId: number) {
  const previous = pushes.get(userId) ?? Promise.resolve();
  const next = previous
    .then(async () => hub.toUser(userId, 'scheduled', { roomId, pending: await pending(userId, roomId) }))
    .catch((err) => console.error(`pending list push failed: ${err.message}`));
  pushes.set(userId, next);
  next.then(() => {
    if (pushes.get(userId) === next) pushes.delete(userId);
  });
}

export async function schedule(userId: number, roomId: number, body: any) {
  const content = v.messageText(body?.content);
  await requireMember(userId, roomId);
  const sendAt = new Date(typeof body?.sendAt === 'string' ? body.sendAt : NaN);
  const earliest = Date.now() + 10_000;
  if (Number.isNaN(sendAt.getTime()) || (sendAt.getTime() < earliest && !bug('scheduled-past-accepted'))) {
    throw new HttpError(400, 'Choose a time in the future');
  }
  const [row] = await db.insert(schema.scheduledMessages).values({ roomId, userId, content, sendAt }).returning();
  changed(userId, roomId);
  return { id: row.id, roomId, content, sendAt: row.sendAt };
}

export async function cancel(userId: number, id: number) {
  const gone = await db
    .delete(schema.scheduledMessages)
    .where(and(eq(schema.scheduledMessages.id, id), eq(schema.scheduledMessages.userId, userId)))
    .returning();
  if (gone.length === 0) throw notFound('No such scheduled message');
  changed(userId, gone[0].roomId);
  return { ok: true };
}

/** Posts every scheduled message that is due, with its due time as its sent time. */
export async function postDue(): Promise<number> {
  const lateness = bug('scheduled-late') ? '10 seconds' : '0 seconds';
  const due = await rows(
    `DELETE FROM scheduled_messages WHERE send_at <= now() - $1::interval
     RETURNING id, room_id AS "roomId", user_id AS "userId", content, send_at AS "sendAt"`,
    [lateness],
  );
  for (const s of due) {
    try {
      if (await membership(s.userId, s.roomId)) {
        await postMessage(s.userId, s.roomId, s.content, { createdAt: new Date(s.sendAt) });
      }
    } catch (err: any) {
      console.error(`scheduled message ${s.id} could not be posted: ${err.message}`);
    }
    changed(s.userId, s.roomId);
  }
  return due.length;
}

export async function draftsOf(userId: number) {
  const list = await rows('SELECT room_id AS "roomId", content FROM drafts WHERE user_id = $1', [userId]);
  return Object.fromEntries(list.map((d) => [d.roomId, d.content]));
}

/** Saves (or, when empty, deletes) a draft; `except` is the socket that typed it. */
export async function saveDraft(userId: number, roomId: number, content: unknown, except?: { to: any }) {
  const text = typeof content === 'string' ? content.slice(0, 4000) : '';
  await requireMember(userId, roomId);
  const key = and(eq(schema.drafts.userId, userId), eq(schema.drafts.roomId, roomId));
  if (text.trim() === '') await db.delete(schema.drafts).where(key);
  else {
    await db
      .insert(schema.drafts)
      .values({ userId, roomId, content: text })
      .onConflictDoUpdate({ target: [schema.drafts.userId, schema.drafts.roomId], set: { content: text, updatedAt: new Date() } });
  }
  if (bug('draft-not-synced')) return;
  const payload = { roomId, content: text.trim() === '' ? '' : text };
  if (except) except.to(hub.userChannel(userId)).emit('draft', payload);
  else hub.toUser(userId, 'draft', payload);
}
