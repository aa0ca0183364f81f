// HTTP calls to the server. The server's address comes from VITE_SERVER_URL.
export const SERVER_URL: string = import.meta.env.VITE_SERVER_URL || 'http://localhost:3001';

const TOKEN_KEY = 'chat.token';

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An answer other than 2xx: `message` is the server's error text, shown to the user. */
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'X-Soft-Errors': '1' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${SERVER_URL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'Cannot reach the server; check that it is running');
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok || data.error) throw new ApiError(data.status ?? res.status, data.error || `Request failed (${res.status})`);
  return data as T;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
