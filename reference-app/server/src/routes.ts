// The REST API (JSON). Every route but /health, /api/reference-bug, POST /api/users and
// POST /api/auth/login needs `Authorization: Bearer <token>`.
import express, { type NextFunction, type Request, type Response } from 'express';
import * as auth from './auth';
import { activeBug } from './bugs';
import { HttpError } from './errors';
import * as hub from './hub';
import * as msg from './messages';
import * as presence from './presence';
import * as rooms from './rooms';
import * as sched from './scheduled';
import * as v from './validate';

type Handler = (userId: number, req: Request) => Promise<unknown>;

/** A signed-in route: its result is the JSON answer. */
const h = (fn: Handler) => async (req: Request, res: Response) => {
  res.json(await fn((req as any).userId, req));
};

const param = (req: Request, name: string) => v.id(req.params[name], name);

function cors(req: Request, res: Response, next: NextFunction) {
  res.set('Access-Control-Allow-Origin', '*');
  res.set('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Soft-Errors');
  res.set('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
  if (req.method === 'OPTIONS') res.status(204).end();
  else next();
}

function publicRoutes(app: express.Express, isReady: () => boolean) {
  app.get('/health', (_req, res) => {
    if (isReady()) res.json({ ok: true });
    else res.status(503).json({ ok: false, error: 'starting' });
  });
  app.get('/api/reference-bug', (_req, res) => res.json({ bug: activeBug }));
  app.post('/api/users', async (req, res) => {
    res.status(201).json(await auth.createAnonymous(req.body?.displayName ?? req.body?.name));
  });
  app.post('/api/auth/login', async (req, res) => res.json(await auth.login(req.body)));
}

function accountRoutes(app: express.Express) {
  app.get('/api/me', h((u) => auth.loadMe(u)));
  app.get('/api/bootstrap', h(async (u) => ({
    me: await auth.loadMe(u),
    rooms: await rooms.roomsFor(u),
    invitations: await rooms.invitationsFor(u),
    drafts: await sched.draftsOf(u),
    users: await presence.presenceList(),
    now: new Date().toISOString(),
  })));
  app.post('/api/auth/register', h(async (u, req) => {
    const me = await auth.register(u, req.body);
    hub.toUser(u, 'me', me);
    return { user: me };
  }));
  app.post('/api/auth/logout', h(async (_u, req) => {
    await auth.logout(req);
    return { ok: true };
  }));
  app.post('/api/status', h((u, req) => presence.setStatus(u, req.body)));
  app.get('/api/users', h(() => presence.presenceList()));
}

function roomRoutes(app: express.Express) {
  app.get('/api/rooms', h((u) => rooms.roomsFor(u)));
  app.post('/api/rooms', h((u, req) => rooms.createRoom(u, req.body)));
  app.post('/api/rooms/:roomId/join', h((u, req) => rooms.join(u, param(req, 'roomId'))));
  app.post('/api/rooms/:roomId/leave', h((u, req) => rooms.leave(u, param(req, 'roomId'))));
  app.get('/api/rooms/:roomId/members', h(async (u, req) => {
    await rooms.requireMember(u, param(req, 'roomId'));
    return rooms.members(param(req, 'roomId'));
  }));
  app.post('/api/rooms/:roomId/members/:userId/:action', h((u, req) => {
    const [roomId, target] = [param(req, 'roomId'), param(req, 'userId')];
    if (req.params.action === 'kick') return rooms.kick(u, roomId, target);
    if (req.params.action === 'ban') return rooms.kick(u, roomId, target, true);
    if (req.params.action === 'promote') return rooms.promote(u, roomId, target);
    throw new HttpError(404, 'Unknown member action: use kick, ban or promote');
  }));
  app.post('/api/rooms/:roomId/invitations', h((u, req) => rooms.invite(u, param(req, 'roomId'), v.id(req.body?.userId, 'userId'))));
  app.get('/api/invitations', h((u) => rooms.invitationsFor(u)));
  app.post('/api/invitations/:roomId/:answer', h((u, req) => rooms.answerInvitation(u, param(req, 'roomId'), req.params.answer === 'accept')));
  app.post('/api/direct', h((u, req) => rooms.directRoom(u, v.id(req.body?.userId, 'userId'))));
}

function messageRoutes(app: express.Express) {
  app.get('/api/rooms/:roomId/messages', h((u, req) => msg.history(u, param(req, 'roomId'))));
  app.post('/api/rooms/:roomId/messages', h((u, req) =>
    msg.postMessage(u, param(req, 'roomId'), req.body?.content, { lifetime: v.lifetime(req.body?.lifetimeSeconds) })));
  app.post('/api/rooms/:roomId/read', h(async (u, req) => {
    await msg.markRead(u, param(req, 'roomId'), v.id(req.body?.messageId, 'messageId'));
    return { ok: true };
  }));
  app.get('/api/messages/:messageId/thread', h((u, req) => msg.thread(u, param(req, 'messageId'))));
  app.post('/api/messages/:messageId/replies', h(async (u, req) => {
    const parent = await msg.messageById(param(req, 'messageId'));
    return msg.postMessage(u, parent.roomId, req.body?.content, { parentId: parent.id });
  }));
  app.patch('/api/messages/:messageId', h((u, req) => msg.editMessage(u, param(req, 'messageId'), req.body?.content)));
  app.get('/api/messages/:messageId/history', h((u, req) => msg.editHistory(u, param(req, 'messageId'))));
  app.post('/api/messages/:messageId/reactions', h((u, req) => msg.toggleReaction(u, param(req, 'messageId'), req.body?.emoji)));
  app.get('/api/rooms/:roomId/scheduled', h((u, req) => sched.pending(u, param(req, 'roomId'))));
  app.post('/api/rooms/:roomId/scheduled', h((u, req) => sched.schedule(u, param(req, 'roomId'), req.body)));
  app.delete('/api/scheduled/:id', h((u, req) => sched.cancel(u, param(req, 'id'))));
  app.get('/api/drafts', h((u) => sched.draftsOf(u)));
  app.put('/api/rooms/:roomId/draft', h(async (u, req) => {
    await sched.saveDraft(u, param(req, 'roomId'), req.body?.content);
    return { ok: true };
  }));
}

/**
 * The status of an error answer. The app's own client sends `X-Soft-Errors: 1` and gets
 * refusals as 200 with `{ error, status }`, so that expected refusals (a taken name, a
 * wrong password) do not log "Failed to load resource" errors in the browser console.
 */
function sendError(req: Request, res: Response, status: number, error: string) {
  if (req.get('x-soft-errors') === '1') res.status(200).json({ error, status });
  else res.status(status).json({ error });
}

function errors(err: any, req: Request, res: Response, _next: NextFunction) {
  if (err instanceof HttpError) {
    sendError(req, res, err.status, err.message);
    return;
  }
  if (err?.type === 'entity.parse.failed') {
    sendError(req, res, 400, 'The request body is not valid JSON');
    return;
  }
  console.error(err);
  res.status(500).json({ error: 'Internal server error (see the server log)' });
}

export function buildApp(isReady: () => boolean) {
  const app = express();
  app.use(cors);
  app.use(express.json({ limit: '100kb' }));
  publicRoutes(app, isReady);
  app.use('/api', auth.requireUser);
  accountRoutes(app);
  roomRoutes(app);
  messageRoutes(app);
  return app;
}

/** Error handler and 404s go last, after anything a stress shape adds. */
export function finishApp(app: express.Express) {
  app.use((_req: Request, res: Response) => res.status(404).json({ error: 'No such route' }));
  app.use(errors);
}
