// Messages: posting, history, read points and receipts, edits, reactions and threads.
import { and, eq } from 'drizzle-orm';
import { roomActivityChanged } from './activity';
import { bug } from './bugs';
import { db, one, rows, schema } from './db';
import { badRequest, forbidden, notFound } from './errors';
import * as hub from './hub';
import { noteActivity } from './presence';
import { requireMember, unreadCount } from './rooms';
import * as v from './validate';

const MESSAGE_SQL = `SELECT m.id, m.room_id AS "roomId", m.user_id AS "userId", u.display_name AS "authorName",
       m.content, m.parent_id AS "parentId", m.created_at AS "createdAt", m.edited_at AS "editedAt",
       m.expires_at AS "expiresAt",
       (SELECT count(*)::int FROM messages r WHERE r.parent_id = m.id) AS "replyCount"
  FROM messages m JOIN users u ON u.id = m.user_id`;

/** Adds `seenBy` (names in the order they saw it) and `reactions` to message rows. */
async function decorate(list: any[], withReceipts = true) {
  const ids = list.map((m) => m.id);
  if (ids.length === 0) return list;
  const receipts = withReceipts
    ? await rows(
        `SELECT mr.message_id, u.display_name AS name FROM message_receipts mr
           JOIN users u ON u.id = mr.user_id WHERE mr.message_id = ANY($1) ORDER BY mr.seen_at, mr.user_id`,
        [ids],
      )
    : [];
  const reacted = await reactionsOf(ids);
  return list.map((m) => ({
    ...m,
    seenBy: receipts.filter((r) => r.message_id === m.id).map((r) => r.name),
    reactions: reacted.get(m.id) ?? [],
  }));
}

/** Reaction chips per message: grouped by emoji in the order each emoji was first used. */
async function reactionsOf(ids: number[]) {
  const list = await rows(
    `SELECT r.message_id, r.emoji, r.user_id, u.display_name AS name FROM reactions r
       JOIN users u ON u.id = r.user_id WHERE r.message_id = ANY($1) ORDER BY r.created_at, r.user_id`,
    [ids],
  );
  const byMessage = new Map<number, { emoji: string; userIds: number[]; names: string[] }[]>();
  for (const r of list) {
    const chips = byMessage.get(r.message_id) ?? [];
    let chip = chips.find((c) => c.emoji === r.emoji);
    if (!chip) chips.push((chip = { emoji: r.emoji, userIds: [], names: [] }));
    chip.userIds.push(r.user_id);
    chip.names.push(r.name);
    byMessage.set(r.message_id, chips);
  }
  return byMessage;
}

export async function messageById(id: number) {
  const row = await one(`${MESSAGE_SQL} WHERE m.id = $1`, [id]);
  if (!row) throw notFound('No such message');
  return row;
}

/** A room's top-level messages, oldest first, for a member. */
export async function history(userId: number, roomId: number) {
  await requireMember(userId, roomId);
  const topLevel = bug('thread-replies-in-main') ? '' : 'AND m.parent_id IS NULL';
  const list = await rows(`${MESSAGE_SQL} WHERE m.room_id = $1 ${topLevel} ORDER BY m.id`, [roomId]);
  return decorate(list, !bug('receipts-lost-on-refresh'));
}

export async function thread(userId: number, parentId: number) {
  const parent = await messageById(parentId);
  await requireMember(userId, parent.roomId);
  const replies = await rows(`${MESSAGE_SQL} WHERE m.parent_id = $1 ORDER BY m.id`, [parentId]);
  const [decorated, ...rest] = await decorate([parent, ...replies]);
  return { parent: decorated, replies: rest };
}

export interface PostOptions {
  lifetime?: number;
  parentId?: number | null;
  createdAt?: Date;
}

/** One INSERT, then the broadcast to the room (after the commit), then the answer. */
export async function postMessage(userId: number, roomId: number, content: unknown, opts: PostOptions = {}) {
  const text = v.messageText(content);
  await requireMember(userId, roomId);
  const parentId = opts.parentId ?? null;
  if (parentId !== null) {
    const parent = await messageById(parentId);
    if (parent.roomId !== roomId || parent.parentId !== null) throw badRequest('Replies go to a top-level message of the same room');
  }
  const createdAt = opts.createdAt ?? new Date();
  const expiresAt = opts.lifetime ? new Date(createdAt.getTime() + opts.lifetime * 1000) : null;
  const [inserted] = await db
    .insert(schema.messages)
    .values({ roomId, userId, content: text, parentId, createdAt, expiresAt })
    .returning({ id: schema.messages.id });
  const message = { ...(await messageById(inserted.id)), seenBy: [], reactions: [] };
  hub.toRoom(roomId, 'message', message);
  if (parentId !== null) await pushReplyCount(roomId, parentId);
  await clearDraft(userId, roomId);
  roomActivityChanged(roomId);
  noteActivity(userId);
  return message;
}

async function pushReplyCount(roomId: number, parentId: number) {
  const row = await one('SELECT count(*)::int AS n FROM messages WHERE parent_id = $1', [parentId]);
  hub.toRoom(roomId, 'reply_count', { roomId, messageId: parentId, replyCount: row?.n ?? 0 });
}

async function clearDraft(userId: number, roomId: number) {
  const removed = await db
    .delete(schema.drafts)
    .where(and(eq(schema.drafts.userId, userId), eq(schema.drafts.roomId, roomId)))
    .returning({ roomId: schema.drafts.roomId });
  if (removed.length > 0) hub.toUser(userId, 'draft', { roomId, content: '' });
}

/** Moves the member's read point forward, stores receipts and tells the room. */
export async function markRead(userId: number, roomId: number, upTo: number) {
  const newest = await one('SELECT max(id) AS id FROM messages WHERE room_id = $1 AND id <= $2', [roomId, upTo]);
  const target = newest?.id;
  if (!target) return;
  const moved = await one(
    `WITH old AS (SELECT last_read_message_id FROM room_members WHERE room_id = $1 AND user_id = $2 FOR UPDATE)
     UPDATE room_members rm SET last_read_message_id = $3 FROM old
      WHERE rm.room_id = $1 AND rm.user_id = $2 AND old.last_read_message_id < $3
     RETURNING old.last_read_message_id AS "from"`,
    [roomId, userId, target],
  );
  if (!moved) return;
  await rows(
    `INSERT INTO message_receipts (message_id, user_id)
     SELECT id, $2 FROM messages WHERE room_id = $1 AND id > $3 AND id <= $4 AND user_id <> $2
     ON CONFLICT DO NOTHING`,
    [roomId, userId, moved.from, target],
  );
  const me = await one('SELECT display_name FROM users WHERE id = $1', [userId]);
  hub.toRoom(roomId, 'receipt', { roomId, userId, name: me?.display_name, from: moved.from, upTo: target });
  hub.toUser(userId, 'unread', { roomId, count: await unreadCount(userId, roomId) });
}

export async function editMessage(userId: number, messageId: number, content: unknown) {
  const text = v.messageText(content);
  const message = await messageById(messageId);
  if (message.userId !== userId) throw forbidden('Only the author can edit a message');
  if (message.content === text) return message;
  await db.transaction(async (tx) => {
    await tx.insert(schema.messageEdits).values({ messageId, previousContent: message.content });
    await tx
      .update(schema.messages)
      .set({ content: text, editedAt: new Date() })
      .where(eq(schema.messages.id, messageId));
  });
  const [updated] = await decorate([await messageById(messageId)]);
  hub.toRoom(message.roomId, 'message_updated', updated);
  return updated;
}

export async function editHistory(userId: number, messageId: number) {
  const message = await messageById(messageId);
  await requireMember(userId, message.roomId);
  const versions = bug('edit-history-empty')
    ? []
    : await rows(
        `SELECT previous_content AS content, edited_at AS "replacedAt" FROM message_edits
          WHERE message_id = $1 ORDER BY edited_at, id`,
        [messageId],
      );
  return { messageId, versions, current: { content: message.content, editedAt: message.editedAt } };
}

export async function toggleReaction(userId: number, messageId: number, emojiValue: unknown) {
  const emoji = v.emoji(emojiValue);
  const message = await messageById(messageId);
  await requireMember(userId, message.roomId);
  const key = and(
    eq(schema.reactions.messageId, messageId),
    eq(schema.reactions.userId, userId),
    eq(schema.reactions.emoji, emoji),
  );
  const removed = await db.delete(schema.reactions).where(key).returning();
  if (removed.length === 0) {
    await db.insert(schema.reactions).values({ messageId, userId, emoji }).onConflictDoNothing();
  }
  const reactions = (await reactionsOf([messageId])).get(messageId) ?? [];
  const payload = { roomId: message.roomId, messageId, parentId: message.parentId, reactions };
  hub.toRoom(message.roomId, 'reactions', payload);
  return payload;
}

/** Deletes ephemeral messages whose time is up; returns how many went. */
export async function expireDue(): Promise<number> {
  const gone = await rows(
    `DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= now()
     RETURNING id, room_id AS "roomId", parent_id AS "parentId"`,
  );
  const touched = new Set<number>();
  for (const m of gone) {
    touched.add(m.roomId);
    if (!bug('ephemeral-not-live')) hub.toRoom(m.roomId, 'message_deleted', m);
    if (m.parentId !== null) await pushReplyCount(m.roomId, m.parentId).catch(() => {});
  }
  for (const roomId of touched) {
    roomActivityChanged(roomId);
    const memberIds = await rows('SELECT user_id FROM room_members WHERE room_id = $1', [roomId]);
    for (const { user_id } of memberIds) {
      hub.toUser(user_id, 'unread', { roomId, count: await unreadCount(user_id, roomId) });
    }
  }
  return gone.length;
}
