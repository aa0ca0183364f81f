#!/usr/bin/env node
// Test pages for the grading driver, written independently of reference-app/ and with
// different markup, so that the driver is shown to work from the UI contract alone:
//
//   /            a small chat app covering feature 1 (basic chat) — rooms and users are
//                <div>s, not lists; the header shows the user's own name; a `Join` button
//                sits both in each room's row and in the open room's header; the `Online`
//                heading is a <div>, not a heading element;
//   /scoping.html  static markup with the traps region scoping must avoid (see the file);
//   /panels.html   a user panel whose `Online` and `Offline` titles are plain <div>s, as a
//                level-1 grading of a higher-level app sees it (see the file);
//   /delay.html  a button `Start` that shows `Delayed text` after ?delay=MS milliseconds
//                (default 900), and the delay it actually achieved (`actual N ms`), for the
//                driver's latency-accuracy benchmark.
//
// No dependencies: node:http, Server-Sent Events for live updates, JSON posts for actions.
//
//   node server.mjs [PORT]     (PORT 0: any free port; the first stdout line says which)

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const users = new Map(); // id -> { id, name }
const rooms = []; // { id, name, members: Set, messages: [] }
const streams = new Map(); // stream -> userId
let nextId = 1;

const online = () => [...new Set(streams.values())].map((id) => users.get(id)?.name).filter(Boolean);

function broadcast() {
  for (const [res, userId] of streams) {
    const data = {
      online: online(),
      rooms: rooms.map((r) => ({
        id: r.id,
        name: r.name,
        member: r.members.has(userId),
        messages: r.members.has(userId) ? r.messages : [],
      })),
    };
    res.write(`data: ${JSON.stringify(data)}\n\n`);
  }
}

function act(body) {
  const user = users.get(body.user);
  switch (body.op) {
    case 'register': {
      const name = String(body.name || '').trim();
      if (!name) return { error: 'Display name is required' };
      if (name.length > 32) return { error: 'Display name must be at most 32 characters' };
      const id = String(nextId++);
      users.set(id, { id, name });
      return { id, name };
    }
    case 'me':
      return user ? { id: user.id, name: user.name } : { error: 'unknown user' };
    case 'create': {
      const name = String(body.name || '').trim();
      if (!user) return { error: 'unknown user' };
      if (!name) return { error: 'Room name is required' };
      if (rooms.some((r) => r.name.toLowerCase() === name.toLowerCase())) {
        return { error: 'A room with that name already exists' };
      }
      const room = { id: String(nextId++), name, members: new Set([user.id]), messages: [] };
      rooms.push(room);
      return { room: room.id };
    }
    case 'join':
    case 'leave': {
      const room = rooms.find((r) => r.id === body.room);
      if (!room || !user) return { error: 'no such room' };
      if (body.op === 'join') room.members.add(user.id);
      else room.members.delete(user.id);
      return {};
    }
    case 'send': {
      const room = rooms.find((r) => r.id === body.room);
      const text = String(body.text || '').trim();
      if (!room || !user || !room.members.has(user.id)) return { error: 'Join the room first' };
      if (!text) return { error: 'empty' };
      if (text.length > 2000) return { error: 'Message must be at most 2000 characters' };
      room.messages.push({ author: user.name, text, at: Date.now() });
      return {};
    }
    default:
      return { error: 'unknown operation' };
  }
}

function serveFile(res, name, type) {
  res.writeHead(200, { 'content-type': type });
  res.end(fs.readFileSync(path.join(here, name)));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/') return serveFile(res, 'chat.html', 'text/html; charset=utf-8');
  if (req.method === 'GET' && url.pathname === '/delay.html') return serveFile(res, 'delay.html', 'text/html; charset=utf-8');
  if (req.method === 'GET' && url.pathname === '/scoping.html') return serveFile(res, 'scoping.html', 'text/html; charset=utf-8');
  if (req.method === 'GET' && url.pathname === '/panels.html') return serveFile(res, 'panels.html', 'text/html; charset=utf-8');
  if (req.method === 'GET' && url.pathname === '/events') {
    const userId = url.searchParams.get('user');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    streams.set(res, userId);
    req.on('close', () => {
      streams.delete(res);
      broadcast();
    });
    broadcast();
    return undefined;
  }
  if (req.method === 'POST' && url.pathname === '/api') {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let out;
      try {
        out = act(JSON.parse(raw));
      } catch (e) {
        out = { error: e.message };
      }
      // Refusals are answered 200 with an `error`, so that the page's console stays clean.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
      if (!out.error) broadcast();
    });
    return undefined;
  }
  res.writeHead(404);
  res.end('not found');
  return undefined;
});

server.listen(Number(process.argv[2] ?? process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
