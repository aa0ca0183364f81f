// Socket shapes for the bench-stress tests (owned by tools/stress).
//
// Generated apps differ in how their sockets speak: an identity event before joining or a
// token in the handshake, joins and sends with or without an ack callback, sending over the
// socket or over REST. With `CHAT_SHAPE=<name>` the server calls `install` below instead of
// installing its own socket handlers, so that bench-stress can be tested against each shape
// on the same real app (same REST routes, same PostgreSQL schema). Each shape writes real
// rows into `messages` and broadcasts to the Socket.IO room `room:<id>`.
//
//   published  the original benchmark's published PostgreSQL app: `register` with
//              { userId, userName } first, then `join_room` { roomId }, then `send_message`
//              { roomId, content }; nothing is acknowledged, every message is echoed to the
//              whole room (sender included) as `message`.
//   rest       messages are sent with the app's own `POST /api/rooms/:roomId/messages`;
//              sockets announce themselves with `user_connected` { userId, username } and
//              join with `join_room` (a bare room id or { roomId }), unacknowledged.
//   camel      camelCase events with ack callbacks: `joinRoom` { roomId, userId } and
//              `sendMessage` { roomId, userId, content }, broadcast as `newMessage`.
//   auth       the handshake's `auth.token` (a session token of the app) says who the
//              socket is; `join` { roomId } and `message` { roomId, content } are acknowledged.
//   classic    `join_room` and `send_message` { roomId, userId, content }, both acknowledged,
//              broadcast as `new_message` (the shape of many generated apps).
//   limited    `classic` with a per-user rate limit of CHAT_RATE_LIMIT messages/s (default 5):
//              over it, a send is answered { error: 'Rate limit exceeded' }.
//   noop       `classic` without the database: acknowledged and broadcast at once (what
//              Node + Socket.IO alone can do).
'use strict';

const roomOf = (roomId) => `room:${roomId}`;

async function insertMessage(pool, roomId, userId, content) {
  const text = typeof content === 'string' ? content.trim() : '';
  if (!text) throw new Error('content is required');
  const { rows } = await pool.query(
    'INSERT INTO messages (room_id, user_id, content) VALUES ($1, $2, $3) RETURNING id, created_at',
    [Number(roomId), Number(userId), text],
  );
  return { id: rows[0].id, roomId: Number(roomId), userId: Number(userId), content: text, createdAt: rows[0].created_at };
}

function published(io, pool) {
  io.on('connection', (socket) => {
    let me = null;
    socket.on('register', ({ userId, userName }) => {
      me = { id: Number(userId), name: userName };
    });
    socket.on('join_room', ({ roomId }) => socket.join(roomOf(roomId)));
    socket.on('send_message', async ({ roomId, content }) => {
      if (!me) return;
      try {
        const message = await insertMessage(pool, roomId, me.id, content);
        io.to(roomOf(roomId)).emit('message', { ...message, userName: me.name });
      } catch (err) {
        console.error(`send_message failed: ${err.message}`);
      }
    });
  });
}

function rest(io) {
  // The app's own REST route posts the message and pushes it through the hub.
  require('./hub').attach(io);
  io.on('connection', (socket) => {
    socket.on('user_connected', (data) => {
      socket.data.userId = Number(data?.userId);
    });
    socket.on('join_room', (room) => socket.join(roomOf(typeof room === 'object' ? room?.roomId : room)));
  });
}

function camel(io, pool) {
  io.on('connection', (socket) => {
    socket.on('joinRoom', ({ roomId }, ack) => {
      socket.join(roomOf(roomId));
      if (typeof ack === 'function') ack({ ok: true });
    });
    socket.on('sendMessage', async ({ roomId, userId, content }, ack) => {
      try {
        const message = await insertMessage(pool, roomId, userId, content);
        io.to(roomOf(roomId)).emit('newMessage', message);
        if (typeof ack === 'function') ack({ ok: true, id: message.id });
      } catch (err) {
        if (typeof ack === 'function') ack({ ok: false, error: err.message });
      }
    });
  });
}

function auth(io, pool) {
  io.use(async (socket, next) => {
    const token = socket.handshake.auth?.token;
    const { rows } = await pool.query('SELECT user_id FROM sessions WHERE token = $1', [String(token ?? '')]);
    if (rows.length === 0) return next(new Error('not signed in'));
    socket.data.userId = rows[0].user_id;
    next();
  });
  io.on('connection', (socket) => {
    socket.on('join', ({ roomId }, ack) => {
      socket.join(roomOf(roomId));
      if (typeof ack === 'function') ack({ ok: true });
    });
    socket.on('message', async ({ roomId, content }, ack) => {
      try {
        const message = await insertMessage(pool, roomId, socket.data.userId, content);
        io.to(roomOf(roomId)).emit('message', message);
        if (typeof ack === 'function') ack({ ok: true });
      } catch (err) {
        if (typeof ack === 'function') ack({ error: err.message });
      }
    });
  });
}

/** A token bucket per user: `perSecond` messages a second, a burst of one second's worth. */
function rateLimiter(perSecond) {
  const buckets = new Map();
  return (userId) => {
    const now = Date.now();
    const b = buckets.get(userId) ?? { tokens: perSecond, at: now };
    b.tokens = Math.min(perSecond, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    buckets.set(userId, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
}

function classic(io, pool, { limit = 0, database = true } = {}) {
  const allowed = limit > 0 ? rateLimiter(limit) : () => true;
  let counter = 0;
  io.on('connection', (socket) => {
    socket.on('join_room', ({ roomId }, ack) => {
      socket.join(roomOf(roomId));
      if (typeof ack === 'function') ack({ ok: true });
    });
    socket.on('send_message', async ({ roomId, userId, content }, ack) => {
      const reply = typeof ack === 'function' ? ack : () => {};
      if (!allowed(Number(userId))) return reply({ error: 'Rate limit exceeded' });
      try {
        const message = database
          ? await insertMessage(pool, roomId, userId, content)
          : { id: ++counter, roomId, userId, content };
        io.to(roomOf(roomId)).emit('new_message', message);
        reply({ ok: true, id: message.id });
      } catch (err) {
        reply({ error: err.message });
      }
    });
  });
}

exports.install = function install({ io, pool }) {
  const shape = process.env.CHAT_SHAPE;
  const shapes = {
    published: () => published(io, pool),
    rest: () => rest(io),
    camel: () => camel(io, pool),
    auth: () => auth(io, pool),
    classic: () => classic(io, pool),
    limited: () => classic(io, pool, { limit: Number(process.env.CHAT_RATE_LIMIT || 5) }),
    noop: () => classic(io, pool, { database: false }),
  };
  if (!shapes[shape]) {
    console.error(`CHAT_SHAPE=${shape} is not a shape; use one of: ${Object.keys(shapes).join(', ')}`);
    process.exit(2);
  }
  shapes[shape]();
};
