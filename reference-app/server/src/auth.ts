// Identity: anonymous users with a session token (kept in the browser's localStorage), and
// accounts that attach a username and a scrypt password hash to that same user.
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import type { NextFunction, Request, Response } from 'express';
import { bug } from './bugs';
import { db, one, schema } from './db';
import { HttpError } from './errors';
import * as v from './validate';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export interface Me {
  id: number;
  displayName: string;
  username: string | null;
  status: string;
  autoAway: boolean;
}

const tokenCache = new Map<string, number>();

export function publicUser(row: any): Me {
  return {
    id: row.id,
    displayName: row.displayName ?? row.display_name,
    username: row.username ?? null,
    status: row.status,
    autoAway: row.autoAway ?? row.auto_away ?? false,
  };
}

export async function newSession(userId: number): Promise<string> {
  const token = randomBytes(24).toString('hex');
  await db.insert(schema.sessions).values({ token, userId });
  tokenCache.set(token, userId);
  return token;
}

export async function userIdForToken(token: unknown): Promise<number | null> {
  if (typeof token !== 'string' || !token) return null;
  const cached = tokenCache.get(token);
  if (cached !== undefined) return cached;
  const row = await one<{ user_id: number }>('SELECT user_id FROM sessions WHERE token = $1', [token]);
  if (!row) return null;
  tokenCache.set(token, row.user_id);
  return row.user_id;
}

export async function loadMe(userId: number): Promise<Me> {
  const [row] = await db.select().from(schema.users).where(eq(schema.users.id, userId));
  if (!row) throw new HttpError(401, 'Your session has ended: enter a display name again');
  return publicUser(row);
}

export async function createAnonymous(name: unknown) {
  const displayName = v.displayName(name);
  const [user] = await db.insert(schema.users).values({ displayName }).returning();
  const token = await newSession(user.id);
  return { token, user: publicUser(user) };
}

function bearer(req: Request): string {
  return (req.get('authorization') || '').replace(/^Bearer\s+/i, '');
}

/** Express middleware: `req.userId` from `Authorization: Bearer <token>`, else 401. */
export async function requireUser(req: Request, res: Response, next: NextFunction) {
  const userId = await userIdForToken(bearer(req));
  if (userId === null) {
    const error = 'Not signed in: create a user with POST /api/users first';
    if (req.get('x-soft-errors') === '1') res.json({ error, status: 401 });
    else res.status(401).json({ error });
    return;
  }
  (req as any).userId = userId;
  next();
}

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 64);
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`;
}

async function passwordMatches(password: string, stored: string | null): Promise<boolean> {
  const [kind, saltHex, hashHex] = (stored || '').split('$');
  if (kind !== 'scrypt' || !saltHex || !hashHex) return false;
  const hash = await scrypt(password, Buffer.from(saltHex, 'hex'), 64);
  const expected = Buffer.from(hashHex, 'hex');
  return expected.length === hash.length && timingSafeEqual(expected, hash);
}

function usernameKey(username: string): string {
  return bug('register-case-sensitive') ? username : username.toLowerCase();
}

export async function register(userId: number, body: any): Promise<Me> {
  const username = v.username(body?.username);
  const password = v.password(body?.password);
  const me = await loadMe(userId);
  if (me.username) throw new HttpError(400, 'You are already registered: log out first');
  const taken = await one('SELECT 1 FROM users WHERE username_key = $1', [usernameKey(username)]);
  if (taken) throw new HttpError(409, 'That username is taken');
  const passwordHash = await hashPassword(password);
  try {
    await db
      .update(schema.users)
      .set({ username, usernameKey: usernameKey(username), passwordHash })
      .where(eq(schema.users.id, userId));
  } catch (err: any) {
    if (err?.code === '23505') throw new HttpError(409, 'That username is taken');
    throw err;
  }
  return loadMe(userId);
}

export async function login(body: any) {
  const username = typeof body?.username === 'string' ? body.username.trim() : '';
  const password = typeof body?.password === 'string' ? body.password : '';
  const row = await one('SELECT id, password_hash FROM users WHERE username_key = $1', [usernameKey(username)]);
  if (!row || !(await passwordMatches(password, row.password_hash))) {
    throw new HttpError(401, 'Invalid username or password');
  }
  const token = await newSession(row.id);
  return { token, user: await loadMe(row.id) };
}

export async function logout(req: Request) {
  const token = bearer(req);
  tokenCache.delete(token);
  await db.delete(schema.sessions).where(eq(schema.sessions.token, token));
}
