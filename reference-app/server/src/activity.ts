// Room activity badges: `hot` (5+ messages in the last 2 minutes), `active` (1+ in the last
// 5 minutes), else none. Recomputed after each message and every 2 seconds so they decay.
import { bug } from './bugs';
import { rows } from './db';
import * as hub from './hub';

export type Activity = 'hot' | 'active' | null;

const levels = new Map<number, Activity>();
const pending = new Set<number>();
let flushTimer: NodeJS.Timeout | null = null;

export function activityOf(roomId: number): Activity {
  return levels.get(roomId) ?? null;
}

const ACTIVITY_SQL = `SELECT r.id, r.is_private,
       count(m.id) FILTER (WHERE m.created_at > now() - interval '2 minutes')::int AS recent,
       count(m.id)::int AS total
  FROM rooms r JOIN messages m ON m.room_id = r.id AND m.created_at > now() - interval '5 minutes'`;

function levelOf(recent: number, total: number): Activity {
  const hot = bug('hot-needs-six') ? 6 : 5;
  if (recent >= hot) return 'hot';
  return total >= 1 ? 'active' : null;
}

function publish(roomId: number, isPrivate: boolean, level: Activity) {
  if ((levels.get(roomId) ?? null) === level) return;
  if (level) levels.set(roomId, level);
  else levels.delete(roomId);
  const payload = { roomId, activity: level };
  if (isPrivate) hub.toRoom(roomId, 'activity', payload);
  else hub.toAll('activity', payload);
}

/** Re-evaluates every room: rooms that got quiet lose or lower their badge. */
export async function refreshAll() {
  const found = await rows(`${ACTIVITY_SQL} GROUP BY r.id`);
  const seen = new Set<number>();
  for (const r of found) {
    seen.add(r.id);
    publish(r.id, r.is_private, levelOf(r.recent, r.total));
  }
  const quiet = [...levels.keys()].filter((id) => !seen.has(id));
  if (quiet.length === 0) return;
  const privacy = await rows('SELECT id, is_private FROM rooms WHERE id = ANY($1)', [quiet]);
  for (const r of privacy) publish(r.id, r.is_private, null);
}

async function refreshRooms(ids: number[]) {
  const found = await rows(`${ACTIVITY_SQL} WHERE r.id = ANY($1) GROUP BY r.id`, [ids]);
  const privacy = await rows('SELECT id, is_private FROM rooms WHERE id = ANY($1)', [ids]);
  for (const r of privacy) {
    const f = found.find((x) => x.id === r.id);
    publish(r.id, r.is_private, f ? levelOf(f.recent, f.total) : null);
  }
}

/** A message arrived in or left the room: recompute its badge shortly (batched per 200 ms). */
export function roomActivityChanged(roomId: number) {
  pending.add(roomId);
  if (flushTimer) return;
  flushTimer = setTimeout(() => {
    flushTimer = null;
    const ids = [...pending];
    pending.clear();
    refreshRooms(ids).catch((err) => console.error(`activity refresh failed: ${err.message}`));
  }, 200);
}
