// Reference chat server for the bench-stress tests.
//
// Shaped like the PostgreSQL apps the agents generate: Express for REST set-up (users,
// rooms, joining), Socket.IO for traffic, `pg` for storage. It is deliberately plain: no
// batching, one INSERT per message, the broadcast after the commit, then the ack.
//
// Environment:
//   PORT          port to listen on (0 = any free port); the chosen port is printed as
//                 `listening on <port>` on stdout once the server is ready.
//   DATABASE_URL  PostgreSQL connection string (required unless NOOP=1).
//   RATE_LIMIT    messages per second allowed per user (token bucket, burst = one
//                 second's worth); over the limit a send is refused with an error ack,
//                 as many generated apps do. Unset or 0 = no limit.
//   NOOP=1        no database at all: ids come from counters; sends are acked and
//                 broadcast at once. Used to see what Node + Socket.IO alone can do.
//   SHAPE=alt     the other common shape of generated apps: `name` instead of
//                 `username`, events `joinRoom`/`sendMessage`, broadcast `message`, and
//                 no ack callback (the sender learns of success from the broadcast).
//   AUTH=1        sessions: creating a user answers a `token`; the other REST calls need
//                 `Authorization: Bearer <token>` and the socket needs `auth.token`.

'use strict';

const http = require('http');
const express = require('express');
const { Server } = require('socket.io');

const noop = process.env.NOOP === '1';
const alt = process.env.SHAPE === 'alt';
const rateLimit = Number(process.env.RATE_LIMIT || 0);
const auth = process.env.AUTH === '1';
const crypto = require('crypto');
// token -> user id
const sessions = new Map();

function newSession(userId) {
  const token = crypto.randomBytes(16).toString('hex');
  sessions.set(token, userId);
  return token;
}

// With AUTH=1, REST calls other than user creation need a valid bearer token.
function requireSession(req, res, next) {
  if (!auth) return next();
  const header = req.get('authorization') || '';
  const userId = sessions.get(header.replace(/^Bearer /, ''));
  if (userId === undefined) return res.status(401).json({ error: 'not signed in' });
  req.userId = userId;
  next();
}
const port = Number(process.env.PORT || 3000);

let pool = null;
if (!noop) {
  const { Pool } = require('pg');
  if (!process.env.DATABASE_URL) {
    console.error('DATABASE_URL is not set (or set NOOP=1 to run without a database)');
    process.exit(2);
  }
  pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
}

const counters = { user: 0, room: 0, message: 0 };
const noopUsers = new Map();

async function migrate() {
  if (noop) return;
  await pool.query(`
    CREATE TABLE IF NOT EXISTS users (
      id SERIAL PRIMARY KEY,
      username TEXT NOT NULL UNIQUE,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS rooms (
      id SERIAL PRIMARY KEY,
      name TEXT NOT NULL,
      created_by INTEGER REFERENCES users(id),
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS room_members (
      room_id INTEGER NOT NULL REFERENCES rooms(id),
      user_id INTEGER NOT NULL REFERENCES users(id),
      PRIMARY KEY (room_id, user_id)
    );
    CREATE TABLE IF NOT EXISTS messages (
      id SERIAL PRIMARY KEY,
      room_id INTEGER NOT NULL REFERENCES rooms(id),
      user_id INTEGER NOT NULL REFERENCES users(id),
      content TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS messages_room ON messages(room_id);
  `);
}

const app = express();
app.use(express.json());

const nameField = alt ? 'name' : 'username';

app.post('/api/users', async (req, res) => {
  const name = req.body && req.body[nameField];
  if (typeof name !== 'string' || name.length === 0) {
    return res.status(400).json({ error: `${nameField} is required` });
  }
  try {
    if (noop) {
      let id = noopUsers.get(name);
      if (id === undefined) {
        id = ++counters.user;
        noopUsers.set(name, id);
      }
      const token = auth ? { token: newSession(id) } : {};
      return res.status(201).json({ id, [nameField]: name, ...token });
    }
    const { rows } = await pool.query(
      `INSERT INTO users (username) VALUES ($1)
       ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
       RETURNING id, username`,
      [name],
    );
    const token = auth ? { token: newSession(rows[0].id) } : {};
    res.status(201).json({ id: rows[0].id, [nameField]: rows[0].username, ...token });
  } catch (err) {
    res.status(500).json({ error: err.message });
  }
});

app.post('/api/rooms', requireSession, async (req, res) => {
  const { name } = req.body || {};
  const userId = req.body && (req.body.userId ?? req.body.createdBy);
  if (typeof name !== 'string' || name.length === 0) {
    return res.status(400).json({ error: 'name is required' });
  }
  try {
    if (noop) return res.status(201).json({ id: ++counters.room, name });
    const { rows } = await pool.query(
      'INSERT INTO rooms (name, created_by) VALUES ($1, $2) RETURNING id, name',
      [name, userId ?? null],
    );
    res.status(201).json(rows[0]);
  } catch (err) {
    res.status(500).json({ error: err.message });
  }
});

app.post('/api/rooms/:id/join', requireSession, async (req, res) => {
  const roomId = Number(req.params.id);
  const userId = req.body && req.body.userId;
  if (!Number.isInteger(roomId) || userId === undefined) {
    return res.status(400).json({ error: 'room id and userId are required' });
  }
  try {
    if (!noop) {
      await pool.query(
        'INSERT INTO room_members (room_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [roomId, userId],
      );
    }
    res.json({ ok: true });
  } catch (err) {
    res.status(500).json({ error: err.message });
  }
});

app.get('/api/rooms/:id/messages', requireSession, async (req, res) => {
  if (noop) return res.json([]);
  try {
    const { rows } = await pool.query(
      'SELECT id, room_id AS "roomId", user_id AS "userId", content, created_at AS "createdAt" FROM messages WHERE room_id = $1 ORDER BY id DESC LIMIT 50',
      [Number(req.params.id)],
    );
    res.json(rows.reverse());
  } catch (err) {
    res.status(500).json({ error: err.message });
  }
});

const server = http.createServer(app);
const io = new Server(server, { cors: { origin: '*' } });

if (auth) {
  io.use((socket, next) => {
    const userId = sessions.get((socket.handshake.auth || {}).token);
    if (userId === undefined) return next(new Error('not signed in'));
    socket.data.sessionUser = userId;
    next();
  });
}

// Token bucket per user id.
const buckets = new Map();
function allowed(userId) {
  if (!rateLimit) return true;
  const now = Date.now();
  let b = buckets.get(userId);
  if (!b) {
    b = { tokens: rateLimit, at: now };
    buckets.set(userId, b);
  }
  b.tokens = Math.min(rateLimit, b.tokens + ((now - b.at) / 1000) * rateLimit);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

const events = alt
  ? { join: 'joinRoom', send: 'sendMessage', broadcast: 'message' }
  : { join: 'join_room', send: 'send_message', broadcast: 'new_message' };

io.on('connection', (socket) => {
  const hs = socket.handshake.auth || {};
  socket.data.userId = socket.data.sessionUser ?? hs.userId ?? socket.handshake.query.userId;

  socket.on(events.join, (data, ack) => {
    const roomId = data && data.roomId;
    if (data && data.userId !== undefined) socket.data.userId = data.userId;
    if (roomId === undefined) {
      if (typeof ack === 'function') ack({ error: 'roomId is required' });
      return;
    }
    socket.join(`room:${roomId}`);
    if (typeof ack === 'function') ack({ ok: true });
  });

  socket.on(events.send, async (data, ack) => {
    const reply = typeof ack === 'function' && !alt ? ack : () => {};
    const roomId = data && data.roomId;
    const userId = (data && data.userId) ?? socket.data.userId;
    const content = data && data.content;
    if (roomId === undefined || userId === undefined || typeof content !== 'string') {
      socket.emit('error_message', { error: 'roomId, userId and content are required' });
      return reply({ error: 'roomId, userId and content are required' });
    }
    if (!allowed(userId)) {
      socket.emit('error_message', { error: 'rate limited' });
      return reply({ error: 'rate limited: too many messages' });
    }
    try {
      let message;
      if (noop) {
        message = { id: ++counters.message, roomId, userId, content, createdAt: new Date().toISOString() };
      } else {
        const { rows } = await pool.query(
          'INSERT INTO messages (room_id, user_id, content) VALUES ($1, $2, $3) RETURNING id, room_id AS "roomId", user_id AS "userId", content, created_at AS "createdAt"',
          [roomId, userId, content],
        );
        message = rows[0];
      }
      io.to(`room:${roomId}`).emit(events.broadcast, message);
      reply({ ok: true, message });
    } catch (err) {
      socket.emit('error_message', { error: err.message });
      reply({ error: err.message });
    }
  });
});

migrate()
  .then(() => {
    server.listen(port, '127.0.0.1', () => {
      console.log(`listening on ${server.address().port}`);
    });
  })
  .catch((err) => {
    console.error(`cannot prepare the database: ${err.message}`);
    process.exit(1);
  });

process.on('SIGTERM', () => {
  io.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
