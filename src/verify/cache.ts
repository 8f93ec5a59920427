import { toGateError, type GateError } from '../errors.js';
import { sha256Hex } from '../util/input.js';
import { VERSION } from '../util/version.js';
import type { CompiledIdentityRule } from './identity.js';
import type { Trust } from './trust.js';
import type { TrustedKey } from './types.js';

/**
 * Verification results remembered by what they rest on: the digest of the evidence bytes, the
 * trusted root, the identity rules, the trusted keys and the verifier's version. A changed root,
 * key or rule is another key, so it can never reuse an old result. Only verification is cached:
 * the policy is evaluated on every decision, hit or miss.
 *
 * Verification does not depend on the time it runs at (certificates are checked at the signing
 * time the log or the timestamp authority vouches for), so a result stays true; entries still
 * expire, failures sooner (a failure may be the verifier's, not the evidence's), and the cache
 * is bounded in entries (least recently used go first). Verification runs on the event loop, so
 * two decisions wanting the same result never compute it at once: the second finds the first's.
 */
export interface VerifyCacheOptions {
  /** entries kept at most (default 10,000) */
  maxEntries?: number;
  /** how long a verified result is kept (default 10 minutes) */
  ttlMs?: number;
  /** how long a failure is kept, with its code and reason (default 30 s) */
  failureTtlMs?: number;
  now?: () => number;
}

export interface VerifyCacheStats {
  hits: number;
  misses: number;
  entries: number;
  /** age in ms of the oldest entry, 0 when empty */
  oldestAgeMs: number;
}

/** A remembered result: what was computed, or the coded error it threw. */
export type Cached<T> = { hit: boolean } & ({ value: T; error?: undefined } | { error: GateError });

export interface VerifyCache {
  /** The result for `key`, from the cache when there, else computed (a thrown error is kept too). */
  get<T>(key: string, compute: () => T): Cached<T>;
  stats(): VerifyCacheStats;
  clear(): void;
}

type Entry = { value?: unknown; error?: GateError; storedAt: number; expiresAt: number };

export function createVerifyCache(o: VerifyCacheOptions = {}): VerifyCache {
  const maxEntries = o.maxEntries ?? 10_000;
  const ttlMs = o.ttlMs ?? 10 * 60_000;
  const failureTtlMs = o.failureTtlMs ?? 30_000;
  const now = o.now ?? Date.now;
  const entries = new Map<string, Entry>();
  let hits = 0;
  let misses = 0;
  return {
    get<T>(key: string, compute: () => T): Cached<T> {
      const t = now();
      const found = entries.get(key);
      if (found && found.expiresAt > t) {
        hits++;
        // least recently used first: a hit moves to the end
        entries.delete(key);
        entries.set(key, found);
        return found.error
          ? { error: found.error, hit: true }
          : { value: found.value as T, hit: true };
      }
      if (found) entries.delete(key);
      misses++;
      let entry: Entry;
      try {
        entry = { value: compute(), storedAt: t, expiresAt: t + ttlMs };
      } catch (err) {
        entry = { error: toGateError(err), storedAt: t, expiresAt: t + failureTtlMs };
      }
      if (maxEntries > 0) {
        entries.set(key, entry);
        while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      }
      return entry.error
        ? { error: entry.error, hit: false }
        : { value: entry.value as T, hit: false };
    },
    stats() {
      const oldest = entries.values().next().value;
      let oldestAt = oldest?.storedAt ?? now();
      for (const e of entries.values()) oldestAt = Math.min(oldestAt, e.storedAt);
      return { hits, misses, entries: entries.size, oldestAgeMs: now() - oldestAt };
    },
    clear: () => entries.clear(),
  };
}

/** What a verification result rests on besides the evidence: computed once per context. */
export interface VerifyGround {
  trust: Trust;
  identities: CompiledIdentityRule[] | 'any';
  keys: TrustedKey[];
}

const grounds = new WeakMap<VerifyGround, string>();

/**
 * The cache key of evidence verified in a context: the evidence bytes' digest (and its payload's,
 * for an image signature), the trusted root's digest, the identity rules, the keys and the
 * verifier version.
 */
export function verifyCacheKey(
  ground: VerifyGround,
  kind: string,
  bytes: Buffer,
  payload?: Buffer,
): string {
  let g = grounds.get(ground);
  if (g === undefined) {
    const identities = ground.identities === 'any' ? 'any' : ground.identities.map((r) => r.rule);
    const keys = ground.keys.map((k) => [k.pem.trim(), k.hint ?? '', k.transparency ?? '']);
    g = sha256Hex(JSON.stringify([VERSION, ground.trust.digest, identities, keys]));
    grounds.set(ground, g);
  }
  return `${g}:${kind}:${digestOf(bytes)}${payload ? `:${digestOf(payload)}` : ''}`;
}

const digests = new WeakMap<Buffer, string>();

/** sha256 of the bytes, once per buffer (a source that keeps what it read hands the same one). */
function digestOf(bytes: Buffer): string {
  let d = digests.get(bytes);
  if (d === undefined) digests.set(bytes, (d = sha256Hex(bytes)));
  return d;
}
