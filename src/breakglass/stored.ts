import { randomUUID } from 'node:crypto';
import {
  BreakGlassConflict,
  type BreakGlassEntry,
  type BreakGlassEvent,
  type StoredBreakGlass,
} from '../audit/break-glass-record.js';
import type { Ledger } from '../audit/ledger.js';
import { GateError, toGateError } from '../errors.js';
import { HEX_LENGTH, type ArtifactDigest } from '../subject.js';
import { isPlainObject } from '../util/input.js';
import { VERSION } from '../util/version.js';
import { checkBreakGlass, type BreakGlassContext } from './check.js';
import type { BreakGlassResult } from './use.js';
import type { AcceptedBreakGlass, BreakGlassRefusal } from './types.js';

/**
 * Break-glass requests stored in the ledger (POST /v1/break-glass, `gate break-glass revoke`,
 * `gate.dev/break-glass: ID` in admission, `gate check --break-glass-id`). The ledger keeps each
 * accepted request with its signed bundles (break-glass-record.ts); every use checks those
 * bundles again with checkBreakGlass, exactly as bundles handed to `gate check --break-glass`
 * are, against the decision's subjects and environment and the time of the use.
 *
 * A stored request is found only by the id a caller names, never looked up by subject and
 * environment: an override then happens only where someone asked for one (the annotation on the
 * workload, the flag in the pipeline), and a deploy nobody meant to override stays a deny even
 * while a request for its image is open. The id is not a secret: using it for anything but the
 * request's subjects in its environment, before its expiry, is refused like any other misuse.
 */

/** The checks' context without the decision's subjects and environment. */
export type StoredContext = Omit<BreakGlassContext, 'subjects' | 'environment'>;

/** The most bundles one request may carry: the request's own and its co-signatures. */
export const MAX_BUNDLES = 16;

export type Registered =
  | { ok: true; requestId: string; recordId: string; expiresAt: string; request: StoredRequest }
  | { ok: false; refusal: BreakGlassRefusal; recordId?: string };

export type StoredRequest = AcceptedBreakGlass & { environment: string; subjects: string[] };

interface Peeked {
  requestId: string;
  environment: string;
  subjects: ArtifactDigest[];
}

/**
 * Checks a posted request and its co-signatures and records the outcome in the ledger before
 * answering: an accepted request (with its bundles) or a refusal that says why. Every bundle must
 * verify and be over the one statement; the request is checked for its own subjects and
 * environment, as `gate check --break-glass` checks it for a decision's.
 */
export async function registerRequest(
  bundles: unknown[],
  ctx: StoredContext,
  ledger: Ledger,
  newId: () => string = randomUUID,
): Promise<Registered> {
  const append = storing(ledger);
  const time = ctx.now.toISOString();
  const refuse = async (refusal: BreakGlassRefusal, about?: Peeked): Promise<Registered> => {
    const recordId = newId();
    await append({
      id: recordId,
      time,
      environment: about?.environment ?? '',
      subjects: about ? about.subjects.map(key) : [],
      event: {
        action: 'refused',
        ...(refusal.requestId ? { requestId: refusal.requestId } : {}),
        gateVersion: VERSION,
        refusal: { code: refusal.code, message: refusal.message },
      },
    });
    return { ok: false, refusal, recordId };
  };
  if (bundles.length === 0 || bundles.length > MAX_BUNDLES)
    throw new GateError(
      'USAGE_ERROR',
      `a break-glass request is 1 to ${MAX_BUNDLES} bundles, not ${bundles.length}`,
    );
  const items = bundles.map((b, i) => ({
    source: `posted bundle ${i + 1}`,
    bytes: Buffer.from(JSON.stringify(b)),
  }));
  const peeked = peek(bundles[0]);
  if (typeof peeked === 'string')
    return refuse({ source: 'posted bundle 1', code: 'BREAK_GLASS_INVALID', message: peeked });
  const notOneStatement = () =>
    refuse(
      {
        requestId: peeked.requestId,
        source: 'posted bundles',
        code: 'BREAK_GLASS_INVALID',
        message: 'the bundles posted are not all over the one request statement',
      },
      peeked,
    );
  if (!oneStatement(bundles)) return notOneStatement();
  const result = checkBreakGlass(items, {
    ...ctx,
    subjects: peeked.subjects,
    environment: peeked.environment,
  });
  const refusal = result.refused[0];
  // (only the claimed id until the signature verified: a refused request names it as claimed)
  if (refusal) return refuse({ requestId: peeked.requestId, ...refusal }, peeked);
  const accepted = result.accepted;
  if (!accepted || accepted.requestId !== peeked.requestId) return notOneStatement();
  const request: StoredRequest = {
    ...accepted,
    environment: peeked.environment,
    subjects: peeked.subjects.map(key),
  };
  const recordId = newId();
  try {
    await append({
      id: recordId,
      time,
      environment: peeked.environment,
      subjects: request.subjects,
      event: {
        action: 'accepted',
        requestId: accepted.requestId,
        gateVersion: VERSION,
        request,
        bundles,
      },
    });
  } catch (err) {
    if (!(err instanceof BreakGlassConflict)) throw err;
    return refuse(
      { requestId: accepted.requestId, source: 'ledger', code: err.refusal, message: err.message },
      peeked,
    );
  }
  return {
    ok: true,
    requestId: accepted.requestId,
    recordId,
    expiresAt: accepted.expiresAt,
    request,
  };
}

/**
 * Ends a request early: a revocation record, after which no override uses it (the ledger refuses
 * one under its write lock), whether it is stored or only ever handed to `gate check` as bundles
 * (`stored: false`). An already revoked request is refused.
 */
export async function revokeRequest(
  requestId: string,
  o: { ledger: Ledger; now: Date; via: 'cli' | 'server'; reason?: string; newId?: () => string },
): Promise<
  { ok: true; recordId: string; stored: boolean } | { ok: false; refusal: BreakGlassRefusal }
> {
  const append = storing(o.ledger);
  const stored = await lookup(o.ledger, requestId);
  const refusal = (code: BreakGlassRefusal['code'], message: string) => ({
    ok: false as const,
    refusal: { requestId, source: 'ledger', code, message },
  });
  if (stored?.revoked)
    return refusal(
      'BREAK_GLASS_REVOKED',
      `break-glass request ${requestId} was already revoked at ${stored.revoked.time}`,
    );
  const recordId = (o.newId ?? randomUUID)();
  const event: BreakGlassEvent = {
    action: 'revoked',
    requestId,
    gateVersion: VERSION,
    via: o.via,
    ...(o.reason ? { reason: o.reason } : {}),
  };
  try {
    await append({
      id: recordId,
      time: o.now.toISOString(),
      environment: stored?.accepted?.environment ?? '',
      subjects: stored?.accepted?.subjects ?? [],
      event,
    });
  } catch (err) {
    if (err instanceof BreakGlassConflict) return refusal(err.refusal, err.message);
    throw err;
  }
  return { ok: true, recordId, stored: stored?.accepted !== undefined };
}

/**
 * A decision that names a stored request (the admission annotation, `--break-glass-id`,
 * `"breakGlass": ID`): the request's bundles are checked again for this decision's subjects and
 * environment, now. Unknown and revoked requests are refused with their codes.
 */
export async function useStored(
  requestId: string,
  subjects: ArtifactDigest[],
  environment: string,
  ctx: StoredContext,
  ledger: Ledger,
): Promise<BreakGlassResult> {
  const refused = (code: BreakGlassRefusal['code'], message: string): BreakGlassResult => ({
    accepted: undefined,
    refused: [{ requestId, source: `ledger:${requestId}`, code, message }],
  });
  let stored: StoredBreakGlass | undefined;
  try {
    stored = await lookup(ledger, requestId);
  } catch (err) {
    const e = toGateError(err, 'LEDGER_UNAVAILABLE');
    return refused('BREAK_GLASS_UNKNOWN', `${e.code}: ${e.message}`);
  }
  if (stored?.revoked)
    return refused(
      'BREAK_GLASS_REVOKED',
      `break-glass request ${requestId} was revoked at ${stored.revoked.time}`,
    );
  if (!stored?.accepted)
    return refused(
      'BREAK_GLASS_UNKNOWN',
      `no break-glass request ${requestId} is stored in the ledger (post it to /v1/break-glass)`,
    );
  const bundles = stored.accepted.breakGlass.bundles ?? [];
  const items = bundles.map((b, i) => ({
    source: `ledger:${requestId}#${i + 1}`,
    bytes: Buffer.from(JSON.stringify(b)),
  }));
  const result = checkBreakGlass(items, { ...ctx, subjects, environment });
  if (result.accepted && result.accepted.requestId !== requestId)
    return refused('BREAK_GLASS_INVALID', `the stored bundles are not request ${requestId}`);
  // named by its id: every refusal is about this request (one per code is enough to say why)
  const seen = new Set<string>();
  const named = result.refused
    .map((r) => ({ ...r, requestId }))
    .filter((r) => !seen.has(r.code) && seen.add(r.code));
  return { accepted: result.accepted, refused: named };
}

/**
 * The refusal for an override the ledger would not record (its write lock decided): revoked in
 * the meantime, or, for a single-use request, used by another decision first.
 */
export async function lostRace(
  ledger: Ledger,
  requestId: string,
  replayed: BreakGlassRefusal,
): Promise<BreakGlassRefusal> {
  const stored = await lookup(ledger, requestId).catch(() => undefined);
  if (!stored?.revoked) return replayed;
  return {
    requestId,
    source: 'ledger',
    code: 'BREAK_GLASS_REVOKED',
    message: `break-glass request ${requestId} was revoked at ${stored.revoked.time}, before this use was recorded`,
  };
}

/** A request presented as bundles that the ledger holds as revoked is refused. */
export async function notRevoked(ledger: Ledger, bg: BreakGlassResult): Promise<BreakGlassResult> {
  if (!bg.accepted || !ledger.breakGlassRequest) return bg;
  const stored = await lookup(ledger, bg.accepted.requestId);
  if (!stored?.revoked) return bg;
  const refusal: BreakGlassRefusal = {
    requestId: bg.accepted.requestId,
    source: 'ledger',
    code: 'BREAK_GLASS_REVOKED',
    message: `break-glass request ${bg.accepted.requestId} was revoked at ${stored.revoked.time}`,
  };
  return { accepted: undefined, refused: [...bg.refused, refusal] };
}

/** A request's accepted and revoked records, if any (LEDGER_UNAVAILABLE for JSON Lines). */
export const lookupRequest = (ledger: Ledger, requestId: string) => lookup(ledger, requestId);

async function lookup(ledger: Ledger, requestId: string): Promise<StoredBreakGlass | undefined> {
  if (!ledger.breakGlassRequest) throw unsupported();
  return ledger.breakGlassRequest(requestId);
}

function storing(ledger: Ledger): (e: BreakGlassEntry) => Promise<void> {
  const append = ledger.appendBreakGlass?.bind(ledger);
  if (!append) throw unsupported();
  return (e) => append(e);
}

function unsupported(): GateError {
  return new GateError(
    'LEDGER_UNAVAILABLE',
    'break-glass requests are stored only in a hash-chained ledger (sqlite or postgres), not in json lines',
  );
}

function key(d: ArtifactDigest): string {
  return `${d.algorithm}:${d.hex}`;
}

/**
 * The request's id, environment and subjects as its statement claims them, read before any
 * cryptography only to know what to check it for (checkBreakGlass then verifies everything,
 * the statement's subjects included, against these). A message why when it cannot be read.
 */
function peek(bundle: unknown): Peeked | string {
  const env = isPlainObject(bundle) ? bundle.dsseEnvelope : undefined;
  const payload = isPlainObject(env) ? env.payload : undefined;
  if (typeof payload !== 'string') return 'the first bundle holds no dsse envelope';
  let statement: unknown;
  try {
    statement = JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));
  } catch {
    return 'the first bundle’s payload is not json';
  }
  const s = isPlainObject(statement) ? statement : {};
  const predicate = isPlainObject(s.predicate) ? s.predicate : {};
  const { requestId, environment } = predicate;
  if (typeof requestId !== 'string' || typeof environment !== 'string')
    return 'the first bundle is not a break-glass request (no requestId and environment)';
  const subjects: ArtifactDigest[] = [];
  for (const sub of Array.isArray(s.subject) ? s.subject : []) {
    const digest = isPlainObject(sub) && isPlainObject(sub.digest) ? sub.digest : {};
    const d = (['sha256', 'sha512'] as const).find(
      (a) =>
        typeof digest[a] === 'string' &&
        new RegExp(`^[0-9a-f]{${HEX_LENGTH[a]}}$`).test(digest[a] as string),
    );
    if (d) subjects.push({ algorithm: d, hex: digest[d] as string });
  }
  if (subjects.length === 0) return 'the request names no sha256 or sha512 subject';
  return { requestId, environment, subjects };
}

/** Every bundle is over the first one's statement (co-signatures sign the same bytes). */
function oneStatement(bundles: unknown[]): boolean {
  const payloadOf = (b: unknown) => {
    const env = isPlainObject(b) ? b.dsseEnvelope : undefined;
    return isPlainObject(env) ? env.payload : undefined;
  };
  const first = payloadOf(bundles[0]);
  return bundles.every((b) => payloadOf(b) === first);
}
