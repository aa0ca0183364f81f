// Reference chat server: Express + Socket.IO + Drizzle ORM on PostgreSQL.
//
// Environment: PORT (default 3001), DATABASE_URL (required), REFERENCE_BUG (one seeded bug,
// see README.md), CHAT_SHAPE (stress tests: install ./stress-shapes instead of the app's
// socket handlers).
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Server } from 'socket.io';
import { refreshAll } from './activity';
import { activeBug } from './bugs';
import { db, pool, schema } from './db';
import * as hub from './hub';
import { expireDue } from './messages';
import { pushPresence } from './presence';
import { buildApp, finishApp } from './routes';
import { postDue } from './scheduled';
import { installSockets } from './sockets';

const port = Number(process.env.PORT || 3001);
let ready = false;

/** Runs `job` every `ms`, never overlapping itself; errors are logged, not fatal. */
function every(ms: number, name: string, job: () => Promise<unknown>) {
  const tick = async () => {
    try {
      await job();
    } catch (err: any) {
      console.error(`${name} failed: ${err.message}`);
    }
    setTimeout(tick, ms).unref();
  };
  setTimeout(tick, ms).unref();
}

function installShapes(app: any, io: Server) {
  const file = path.join(__dirname, 'stress-shapes.js');
  if (!existsSync(file)) {
    console.error(`CHAT_SHAPE=${process.env.CHAT_SHAPE} needs ${file}, which does not exist (it belongs to bench-stress); unset CHAT_SHAPE to run the chat app`);
    process.exit(2);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(file).install({ app, io, db, pool, schema });
}

async function main() {
  await pool.query('SELECT 1 FROM users LIMIT 1').catch((err) => {
    console.error(`cannot use the database (${err.message}); run \`npm run db:push\` first`);
    process.exit(1);
  });
  const app = buildApp(() => ready);
  const server = http.createServer(app);
  const io = new Server(server, { cors: { origin: '*' } });
  if (process.env.CHAT_SHAPE) installShapes(app, io);
  else {
    hub.attach(io);
    installSockets(io);
  }
  finishApp(app);
  every(500, 'scheduled messages', postDue);
  every(500, 'ephemeral expiry', expireDue);
  every(2000, 'activity badges', refreshAll);
  every(15000, 'presence refresh', async () => pushPresence());
  server.listen(port, () => {
    ready = true;
    const bugNote = activeBug ? ` with seeded bug ${activeBug}` : '';
    console.log(`listening on ${(server.address() as any).port}${bugNote}`);
  });
  const stop = () => {
    io.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
