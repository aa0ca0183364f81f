// Input rules shared by every route and socket event (the client applies the same ones).
import { badRequest } from './errors';

function trimmed(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

export function displayName(value: unknown): string {
  const name = trimmed(value);
  if (!name) throw badRequest('Display name is required');
  if (name.length > 32) throw badRequest('Display name must be at most 32 characters');
  return name;
}

export function roomName(value: unknown): string {
  const name = trimmed(value);
  if (!name) throw badRequest('Room name is required');
  if (name.length > 48) throw badRequest('Room name must be at most 48 characters');
  return name;
}

export function messageText(value: unknown): string {
  const text = trimmed(value);
  if (!text) throw badRequest('Message cannot be empty');
  if (text.length > 2000) throw badRequest('Message must be at most 2000 characters');
  return text;
}

export function id(value: unknown, what: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw badRequest(`${what} must be a positive integer`);
  return n;
}

export const LIFETIMES = [0, 30, 60, 300];

export function lifetime(value: unknown): number {
  const n = value === undefined || value === null || value === '' ? 0 : Number(value);
  if (!LIFETIMES.includes(n)) throw badRequest(`Message lifetime must be one of ${LIFETIMES.join(', ')} seconds`);
  return n;
}

export const EMOJI = ['👍', '❤️', '😂', '😮', '😢'];

export function emoji(value: unknown): string {
  if (typeof value !== 'string' || !EMOJI.includes(value)) throw badRequest(`Reaction must be one of ${EMOJI.join(' ')}`);
  return value;
}

export const STATUSES = ['online', 'away', 'dnd', 'invisible'];

export function status(value: unknown): string {
  if (typeof value !== 'string' || !STATUSES.includes(value)) throw badRequest(`Status must be one of ${STATUSES.join(', ')}`);
  return value;
}

export function username(value: unknown): string {
  const name = trimmed(value);
  if (!/^[A-Za-z0-9_]{3,20}$/.test(name)) throw badRequest('Username must be 3–20 letters, digits or underscores');
  return name;
}

export function password(value: unknown): string {
  if (typeof value !== 'string' || value.length < 8) throw badRequest('Password must be at least 8 characters');
  return value;
}
