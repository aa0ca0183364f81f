// The chat app's tables (Drizzle ORM). `npm run db:push` creates them in DATABASE_URL.
import {
  boolean,
  foreignKey,
  index,
  integer,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';

const now = (name: string) => timestamp(name, { withTimezone: true }).notNull().defaultNow();

export const users = pgTable('users', {
  id: serial('id').primaryKey(),
  displayName: text('display_name').notNull(),
  // Set when the anonymous user registers; `username_key` is the lower-cased form (unique).
  username: text('username'),
  usernameKey: text('username_key').unique(),
  passwordHash: text('password_hash'),
  // online | away | dnd | invisible; `auto_away` marks an away set by idle detection.
  status: text('status').notNull().default('online'),
  autoAway: boolean('auto_away').notNull().default(false),
  lastActiveAt: now('last_active_at'),
  createdAt: now('created_at'),
});

export const sessions = pgTable('sessions', {
  token: text('token').primaryKey(),
  userId: integer('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  createdAt: now('created_at'),
});

export const rooms = pgTable('rooms', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  // Lower-cased name of a named room (unique); null for direct conversations.
  nameKey: text('name_key').unique(),
  isPrivate: boolean('is_private').notNull().default(false),
  isDirect: boolean('is_direct').notNull().default(false),
  // `smallerUserId:largerUserId` of a direct conversation (unique); null otherwise.
  dmKey: text('dm_key').unique(),
  createdBy: integer('created_by').references(() => users.id),
  createdAt: now('created_at'),
});

export const roomMembers = pgTable(
  'room_members',
  {
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    isAdmin: boolean('is_admin').notNull().default(false),
    // The read point: the id of the newest message of the room the member has seen.
    lastReadMessageId: integer('last_read_message_id').notNull().default(0),
    joinedAt: now('joined_at'),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.userId] }), index('room_members_user').on(t.userId)],
);

export const roomBans = pgTable(
  'room_bans',
  {
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    bannedBy: integer('banned_by').references(() => users.id),
    createdAt: now('created_at'),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.userId] })],
);

export const messages = pgTable(
  'messages',
  {
    id: serial('id').primaryKey(),
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id),
    content: text('content').notNull(),
    // A thread reply's top-level message; null for top-level messages.
    parentId: integer('parent_id'),
    createdAt: now('created_at'),
    editedAt: timestamp('edited_at', { withTimezone: true }),
    // Ephemeral messages: the server deletes the row at this time.
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [
    foreignKey({ columns: [t.parentId], foreignColumns: [t.id] }).onDelete('cascade'),
    index('messages_room_id').on(t.roomId, t.id),
    index('messages_created_at').on(t.createdAt),
    index('messages_expires_at').on(t.expiresAt),
  ],
);

export const messageReceipts = pgTable(
  'message_receipts',
  {
    messageId: integer('message_id')
      .notNull()
      .references(() => messages.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    seenAt: now('seen_at'),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.userId] })],
);

export const reactions = pgTable(
  'reactions',
  {
    messageId: integer('message_id')
      .notNull()
      .references(() => messages.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    emoji: text('emoji').notNull(),
    createdAt: now('created_at'),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.userId, t.emoji] })],
);

export const messageEdits = pgTable(
  'message_edits',
  {
    id: serial('id').primaryKey(),
    messageId: integer('message_id')
      .notNull()
      .references(() => messages.id, { onDelete: 'cascade' }),
    // The text the edit replaced, and when it was replaced.
    previousContent: text('previous_content').notNull(),
    editedAt: now('edited_at'),
  },
  (t) => [index('message_edits_message').on(t.messageId)],
);

export const scheduledMessages = pgTable(
  'scheduled_messages',
  {
    id: serial('id').primaryKey(),
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    content: text('content').notNull(),
    sendAt: timestamp('send_at', { withTimezone: true }).notNull(),
    createdAt: now('created_at'),
  },
  (t) => [index('scheduled_messages_send_at').on(t.sendAt)],
);

export const invitations = pgTable(
  'invitations',
  {
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    inviteeId: integer('invitee_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    inviterId: integer('inviter_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: now('created_at'),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.inviteeId] })],
);

export const drafts = pgTable(
  'drafts',
  {
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    roomId: integer('room_id')
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    content: text('content').notNull(),
    updatedAt: now('updated_at'),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roomId] })],
);
