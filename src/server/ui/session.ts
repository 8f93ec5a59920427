import { createHash, randomBytes } from 'node:crypto';

/** How long a web view session lasts from sign-in (absolute: activity does not extend it). */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
/** Sessions held at once; past this the oldest goes first (memory stays bounded). */
export const MAX_SESSIONS = 1000;

export interface SessionStore {
  /** a new session; its id goes to the browser in a cookie and nowhere else */
  create(now?: number): { id: string; expires: number };
  /** true while the session exists and has not expired */
  valid(id: string | undefined, now?: number): boolean;
  drop(id: string | undefined): void;
  size(): number;
}

/**
 * Sessions held in this process's memory: 32 random bytes each, kept only as their SHA-256 so
 * the store never holds what a browser presents. A restart signs everyone out, which is the
 * safe direction for a read-only view.
 */
export function createSessionStore(opts: { ttlMs?: number; max?: number } = {}): SessionStore {
  const ttl = opts.ttlMs ?? SESSION_TTL_MS;
  const max = opts.max ?? MAX_SESSIONS;
  // insertion order is creation order: the first key is the oldest session
  const expiries = new Map<string, number>();
  const key = (id: string) => createHash('sha256').update(id, 'utf8').digest('hex');
  const prune = (now: number) => {
    for (const [k, expires] of expiries) if (expires <= now) expiries.delete(k);
    while (expiries.size >= max) expiries.delete(expiries.keys().next().value!);
  };
  return {
    create(now = Date.now()) {
      prune(now);
      const id = randomBytes(32).toString('base64url');
      const expires = now + ttl;
      expiries.set(key(id), expires);
      return { id, expires };
    },
    valid(id, now = Date.now()) {
      if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return false;
      const expires = expiries.get(key(id));
      if (expires === undefined) return false;
      if (expires > now) return true;
      expiries.delete(key(id));
      return false;
    },
    drop(id) {
      if (id !== undefined) expiries.delete(key(id));
    },
    size: () => expiries.size,
  };
}
