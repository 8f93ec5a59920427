import crypto from 'node:crypto';
import type { AcceptedBreakGlass } from '../breakglass/types.js';
import { GateError } from '../errors.js';
import { canonical, type LedgerRecord } from './record.js';

/**
 * Break-glass requests in the ledger (issue 14).
 *
 * Design: a request accepted by POST /v1/break-glass, a request refused there, and a revocation
 * are records of the same hash chain as the decisions, not rows of a table beside it. So they
 * are tamper-evident exactly like decisions (a removed revocation, an edited expiry or subject
 * breaks the chain, and a signed checkpoint fixes them in place), `gate audit verify` walks them
 * with everything else, and their order relative to the overrides is the chain's order: an
 * override recorded after a revocation is refused under the ledger's write lock (SQLite's
 * IMMEDIATE transaction, PostgreSQL's advisory lock), and verification finds one if an edited
 * copy holds it. A revoked request racing a use thus has one answer, the chain's.
 *
 * Such a record has the decision record's indexed fields (seq, id, time, environment, subjects,
 * rules, prevHash, hash), the outcome `break-glass`, which no decision has, and `breakGlass` (the
 * event) instead of `decision` and `input`. Queries of decisions (LedgerQuery) leave them out;
 * `entries()` streams them in chain order with the decisions. An accepted request keeps its
 * signed bundles: each later use verifies them again, against the trust root and policy data of
 * that day, exactly as `gate check --break-glass` does with bundles it is handed.
 */
export const BREAK_GLASS_OUTCOME = 'break-glass';

export type BreakGlassAction = 'accepted' | 'refused' | 'revoked';

/** What happened to a break-glass request, as the ledger keeps it. */
export interface BreakGlassEvent {
  action: BreakGlassAction;
  /** the request's id (absent for a refused request whose statement could not be read) */
  requestId?: string;
  gateVersion: string;
  /** accepted: the request as checked, with its environment and subjects ("sha256:<hex>") */
  request?: AcceptedBreakGlass & { environment: string; subjects: string[] };
  /** accepted: the Sigstore bundles posted (the request's, then each co-signature's) */
  bundles?: unknown[];
  /** refused: why, with the refusal's code */
  refusal?: { code: string; message: string };
  /** revoked: where it was asked (`gate break-glass revoke`, or DELETE on the server) */
  via?: 'cli' | 'server';
  /** revoked: the reason given, if any */
  reason?: string;
}

/** A break-glass record of the chain. */
export interface BreakGlassRecord {
  seq: number;
  id: string;
  time: string;
  environment: string;
  outcome: typeof BREAK_GLASS_OUTCOME;
  /** "sha256:<hex>" for each subject of the request */
  subjects: string[];
  rules: string[];
  breakGlass: BreakGlassEvent;
  prevHash: string;
  hash: string;
}

/** Any record of the chain: a decision, or a break-glass request's acceptance, refusal or revocation. */
export type LedgerEntry = LedgerRecord | BreakGlassRecord;

/** What is appended: the record is made from it under the write lock, at the head. */
export interface BreakGlassEntry {
  id: string;
  time: string;
  environment: string;
  subjects: string[];
  event: BreakGlassEvent;
}

export function isBreakGlassRecord(r: { outcome: string }): r is BreakGlassRecord {
  return r.outcome === BREAK_GLASS_OUTCOME;
}

/** The break-glass record at `seq` after `prevHash`, and the canonical text its hash is over. */
export function makeBreakGlassRecord(
  seq: number,
  prevHash: string,
  e: BreakGlassEntry,
): { record: BreakGlassRecord; body: string } {
  const fields: Omit<BreakGlassRecord, 'hash'> = {
    seq,
    id: e.id,
    time: e.time,
    environment: e.environment,
    outcome: BREAK_GLASS_OUTCOME,
    subjects: e.subjects,
    rules: [],
    breakGlass: e.event,
    prevHash,
  };
  const body = canonical(fields);
  const hash = crypto.createHash('sha256').update(body).digest('hex');
  return { record: { ...fields, hash }, body };
}

/**
 * A request as the ledger holds it: the record that accepted it (POST /v1/break-glass), and the
 * one that revoked it. A request never posted (used only as bundles handed to `gate check`) may
 * be revoked too, so either may be missing, never both.
 */
export interface StoredBreakGlass {
  requestId: string;
  accepted?: BreakGlassRecord;
  revoked?: BreakGlassRecord;
}

/** From a request's accepted and revoked records (chain order), its state; undefined: neither. */
export function storedOf(
  requestId: string,
  records: BreakGlassRecord[],
): StoredBreakGlass | undefined {
  const accepted = records.find((r) => r.breakGlass.action === 'accepted');
  const revoked = records.find((r) => r.breakGlass.action === 'revoked');
  if (!accepted && !revoked) return undefined;
  return { requestId, ...(accepted ? { accepted } : {}), ...(revoked ? { revoked } : {}) };
}

/**
 * A record the ledger refuses because of a break-glass request's state, decided under the write
 * lock: `refusal` is the break-glass code the caller answers with. (Its GateError code is
 * BREAK_GLASS_REPLAYED: the request cannot be used, or stored, again.)
 */
export class BreakGlassConflict extends GateError {
  constructor(
    readonly refusal: 'BREAK_GLASS_EXISTS' | 'BREAK_GLASS_REVOKED' | 'BREAK_GLASS_UNKNOWN',
    message: string,
  ) {
    super('BREAK_GLASS_REPLAYED', message);
  }
}

/**
 * The rules a record must keep given the stored state of its request, checked by both backends
 * in the append's transaction: a request is stored once and never after its revocation, revoked
 * once, and an override never uses a revoked request.
 */
export function conflictOf(
  record: LedgerEntry,
  stored: StoredBreakGlass | undefined,
): BreakGlassConflict | undefined {
  if (isBreakGlassRecord(record)) {
    const { action, requestId } = record.breakGlass;
    if (requestId === undefined || action === 'refused') return undefined;
    if (action === 'accepted' && stored?.revoked)
      return new BreakGlassConflict(
        'BREAK_GLASS_REVOKED',
        `break-glass request ${requestId} was revoked (record ${stored.revoked.seq})`,
      );
    if (action === 'accepted' && stored?.accepted)
      return new BreakGlassConflict(
        'BREAK_GLASS_EXISTS',
        `break-glass request ${requestId} is already stored (record ${stored.accepted.seq})`,
      );
    if (action === 'revoked' && stored?.revoked)
      return new BreakGlassConflict(
        'BREAK_GLASS_REVOKED',
        `break-glass request ${requestId} was already revoked (record ${stored.revoked.seq})`,
      );
    return undefined;
  }
  if (record.outcome === 'override' && stored?.revoked)
    return new BreakGlassConflict(
      'BREAK_GLASS_REVOKED',
      `break-glass request ${stored.requestId} was revoked (record ${stored.revoked.seq})`,
    );
  return undefined;
}

/** The break-glass request an entry concerns, when the ledger must look its state up first. */
export function requestIdOf(record: LedgerEntry): string | undefined {
  if (isBreakGlassRecord(record))
    return record.breakGlass.action === 'refused' ? undefined : record.breakGlass.requestId;
  return record.outcome === 'override' ? record.decision.override?.requestId : undefined;
}
