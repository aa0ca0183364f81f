// The seeded bug the server runs with (REFERENCE_BUG), for the bugs that live in the client.
let active: string | null = null;

export function setBug(key: string | null) {
  active = key;
}

export function bug(key: string): boolean {
  return active === key;
}
