// Seeded bugs: REFERENCE_BUG=<key> switches on exactly one (see reference-app/README.md).
export const BUG_KEYS = [
  'leave-still-receives',
  'typing-never-clears',
  'receipts-lost-on-refresh',
  'unread-lost-on-refresh',
  'scheduled-past-accepted',
  'scheduled-late',
  'ephemeral-not-live',
  'reaction-tooltip-missing',
  'edit-history-empty',
  'kick-no-notice',
  'invisible-shows-online',
  'thread-replies-in-main',
  'invite-not-live',
  'hot-needs-six',
  'draft-not-synced',
  'register-case-sensitive',
] as const;

export type BugKey = (typeof BUG_KEYS)[number];

function readBug(): BugKey | null {
  const raw = (process.env.REFERENCE_BUG || '').trim();
  if (!raw) return null;
  if (!(BUG_KEYS as readonly string[]).includes(raw)) {
    console.error(`REFERENCE_BUG=${raw} is not a seeded bug; use one of: ${BUG_KEYS.join(', ')} (or unset it)`);
    process.exit(2);
  }
  return raw as BugKey;
}

export const activeBug: BugKey | null = readBug();

export function bug(key: BugKey): boolean {
  return activeBug === key;
}
