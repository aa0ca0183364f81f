// Rooms, memberships, roles, bans, invitations and direct conversations.
import { and, eq } from 'drizzle-orm';
import { activityOf } from './activity';
import { bug } from './bugs';
import { db, one, rows, schema } from './db';
import { HttpError, badRequest, forbidden, notFound } from './errors';
import * as hub from './hub';
import * as v from './validate';

const UNREAD_SQL = `(SELECT count(*)::int FROM messages m
   WHERE m.room_id = r.id AND m.id > rm.last_read_message_id AND m.user_id <> $1 AND m.parent_id IS NULL)`;

/** Every room the user can see, with membership, role and unread count. */
export async function roomsFor(userId: number) {
  const list = await rows(
    `SELECT r.id, r.name, r.is_private, r.is_direct, r.created_by,
            rm.user_id IS NOT NULL AS is_member, COALESCE(rm.is_admin, false) AS is_admin,
            CASE WHEN rm.user_id IS NULL THEN 0 ELSE ${UNREAD_SQL} END AS unread,
            (SELECT json_build_object('id', u.id, 'name', u.display_name) FROM room_members pm
               JOIN users u ON u.id = pm.user_id
              WHERE r.is_direct AND pm.room_id = r.id AND pm.user_id <> $1 LIMIT 1) AS peer
       FROM rooms r
       LEFT JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = $1
      WHERE NOT r.is_private OR rm.user_id IS NOT NULL
      ORDER BY r.id`,
    [userId],
  );
  return list.map((r) => ({
    id: r.id,
    name: r.is_direct ? (r.peer?.name ?? 'Direct message') : r.name,
    isPrivate: r.is_private,
    isDirect: r.is_direct,
    peerId: r.peer?.id ?? null,
    isMember: r.is_member,
    isAdmin: r.is_admin,
    unread: r.unread,
    activity: activityOf(r.id),
  }));
}

export async function unreadCount(userId: number, roomId: number): Promise<number> {
  const row = await one(
    `SELECT ${UNREAD_SQL} AS unread FROM rooms r
       JOIN room_members rm ON rm.room_id = r.id AND rm.user_id = $1 WHERE r.id = $2`,
    [userId, roomId],
  );
  return row?.unread ?? 0;
}

export async function roomById(roomId: number) {
  const [room] = await db.select().from(schema.rooms).where(eq(schema.rooms.id, roomId));
  if (!room) throw notFound('No such room');
  return room;
}

export async function membership(userId: number, roomId: number) {
  const [member] = await db
    .select()
    .from(schema.roomMembers)
    .where(and(eq(schema.roomMembers.roomId, roomId), eq(schema.roomMembers.userId, userId)));
  return member ?? null;
}

export async function requireMember(userId: number, roomId: number) {
  const member = await membership(userId, roomId);
  if (!member) throw forbidden('Join the room first');
  return member;
}

/** Tell the users concerned to reload their room lists. */
function roomsChanged(userIds: number[] | 'all') {
  if (userIds === 'all') hub.toAll('rooms_changed', {});
  else for (const id of userIds) hub.toUser(id, 'rooms_changed', {});
}

export async function createRoom(userId: number, body: any) {
  const name = v.roomName(body?.name);
  const isPrivate = body?.isPrivate === true;
  const taken = await one('SELECT 1 FROM rooms WHERE name_key = $1', [name.toLowerCase()]);
  if (taken) throw new HttpError(409, 'A room with that name already exists');
  let room;
  try {
    room = await db.transaction(async (tx) => {
      const [created] = await tx
        .insert(schema.rooms)
        .values({ name, nameKey: name.toLowerCase(), isPrivate, createdBy: userId })
        .returning();
      await tx.insert(schema.roomMembers).values({ roomId: created.id, userId, isAdmin: true });
      return created;
    });
  } catch (err: any) {
    if (err?.code === '23505') throw new HttpError(409, 'A room with that name already exists');
    throw err;
  }
  hub.subscribe(userId, room.id, true);
  roomsChanged(isPrivate ? [userId] : 'all');
  return { id: room.id, name: room.name, isPrivate: room.isPrivate };
}

export async function join(userId: number, roomId: number) {
  const room = await roomById(roomId);
  if (room.isDirect) throw forbidden('Only its two users can see a direct conversation');
  const banned = await one('SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2', [roomId, userId]);
  if (banned) throw forbidden('You are banned from this room');
  if (room.isPrivate && !(await membership(userId, roomId))) {
    throw forbidden('This room is private: ask an admin for an invitation');
  }
  await addMember(roomId, userId, false);
  return { ok: true };
}

async function addMember(roomId: number, userId: number, isAdmin: boolean) {
  await db.insert(schema.roomMembers).values({ roomId, userId, isAdmin }).onConflictDoNothing();
  hub.subscribe(userId, roomId, true);
  roomsChanged([userId]);
  await pushMembers(roomId);
}

async function removeMember(roomId: number, userId: number, unsubscribe = true) {
  await db
    .delete(schema.roomMembers)
    .where(and(eq(schema.roomMembers.roomId, roomId), eq(schema.roomMembers.userId, userId)));
  if (unsubscribe) hub.subscribe(userId, roomId, false);
  roomsChanged([userId]);
  await pushMembers(roomId);
}

export async function leave(userId: number, roomId: number) {
  const room = await roomById(roomId);
  if (room.isDirect) throw badRequest('A direct conversation cannot be left');
  await removeMember(roomId, userId, !bug('leave-still-receives'));
  return { ok: true };
}

export async function members(roomId: number) {
  return rows(
    `SELECT u.id, u.display_name AS name, rm.is_admin AS "isAdmin"
       FROM room_members rm JOIN users u ON u.id = rm.user_id
      WHERE rm.room_id = $1 ORDER BY rm.joined_at, u.id`,
    [roomId],
  );
}

export async function pushMembers(roomId: number) {
  hub.toRoom(roomId, 'members', { roomId, members: await members(roomId) });
}

async function requireAdminOver(adminId: number, roomId: number, targetId: number) {
  const room = await roomById(roomId);
  const me = await requireMember(adminId, roomId);
  if (!me.isAdmin || room.isDirect) throw forbidden('Only room admins can do that');
  const target = await membership(targetId, roomId);
  if (!target) throw notFound('That user is not a member of the room');
  if (target.isAdmin) throw forbidden('Admins cannot be kicked, banned or promoted');
  return room;
}

export async function kick(adminId: number, roomId: number, targetId: number, banned = false) {
  const room = await requireAdminOver(adminId, roomId, targetId);
  if (banned) {
    await db.insert(schema.roomBans).values({ roomId, userId: targetId, bannedBy: adminId }).onConflictDoNothing();
  }
  await removeMember(roomId, targetId);
  if (!(bug('kick-no-notice') && !banned)) {
    hub.toUser(targetId, 'removed', { roomId, roomName: room.name, banned });
  }
  return { ok: true };
}

export async function promote(adminId: number, roomId: number, targetId: number) {
  await requireAdminOver(adminId, roomId, targetId);
  await db
    .update(schema.roomMembers)
    .set({ isAdmin: true })
    .where(and(eq(schema.roomMembers.roomId, roomId), eq(schema.roomMembers.userId, targetId)));
  roomsChanged([targetId]);
  await pushMembers(roomId);
  return { ok: true };
}

export async function invitationsFor(userId: number) {
  return rows(
    `SELECT i.room_id AS "roomId", r.name AS "roomName", u.display_name AS "inviterName"
       FROM invitations i JOIN rooms r ON r.id = i.room_id JOIN users u ON u.id = i.inviter_id
      WHERE i.invitee_id = $1 ORDER BY i.created_at`,
    [userId],
  );
}

async function pushInvitations(userId: number) {
  hub.toUser(userId, 'invitations', await invitationsFor(userId));
}

export async function invite(adminId: number, roomId: number, inviteeId: number) {
  const room = await roomById(roomId);
  const me = await requireMember(adminId, roomId);
  if (!room.isPrivate || room.isDirect) throw badRequest('Invitations are for private rooms');
  if (!me.isAdmin) throw forbidden('Only room admins can invite');
  if (await membership(inviteeId, roomId)) throw badRequest('That user is already a member');
  const user = await one('SELECT 1 FROM users WHERE id = $1', [inviteeId]);
  if (!user) throw notFound('No such user');
  await db.insert(schema.invitations).values({ roomId, inviteeId, inviterId: adminId }).onConflictDoNothing();
  if (!bug('invite-not-live')) await pushInvitations(inviteeId);
  return { ok: true };
}

export async function answerInvitation(userId: number, roomId: number, accept: boolean) {
  const deleted = await db
    .delete(schema.invitations)
    .where(and(eq(schema.invitations.roomId, roomId), eq(schema.invitations.inviteeId, userId)))
    .returning();
  if (deleted.length === 0) throw notFound('No such invitation');
  if (accept) await addMember(roomId, userId, false);
  await pushInvitations(userId);
  return { ok: true, roomId };
}

/** The direct conversation between two users, created on first use. */
export async function directRoom(userId: number, otherId: number) {
  if (userId === otherId) throw badRequest('Pick another user to message');
  const other = await one('SELECT id FROM users WHERE id = $1', [otherId]);
  if (!other) throw notFound('No such user');
  const dmKey = `${Math.min(userId, otherId)}:${Math.max(userId, otherId)}`;
  const existing = await one('SELECT id FROM rooms WHERE dm_key = $1', [dmKey]);
  if (existing) return { id: existing.id };
  const room = await db.transaction(async (tx) => {
    const [created] = await tx
      .insert(schema.rooms)
      .values({ name: `dm ${dmKey}`, isPrivate: true, isDirect: true, dmKey, createdBy: userId })
      .onConflictDoNothing()
      .returning();
    if (!created) return null;
    await tx.insert(schema.roomMembers).values([
      { roomId: created.id, userId },
      { roomId: created.id, userId: otherId },
    ]);
    return created;
  });
  if (!room) return { id: (await one('SELECT id FROM rooms WHERE dm_key = $1', [dmKey])).id };
  for (const id of [userId, otherId]) hub.subscribe(id, room.id, true);
  roomsChanged([userId, otherId]);
  return { id: room.id };
}
