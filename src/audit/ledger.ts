import type { KeyObject } from 'node:crypto';
import type { Decision, Outcome } from '../decision.js';
import type {
  BreakGlassEntry,
  BreakGlassRecord,
  LedgerEntry,
  StoredBreakGlass,
} from './break-glass-record.js';
import type { IndexTables } from './index-audit.js';
import type { Checkpoint, LedgerRecord } from './record.js';
import type { ChainVerification, VerifyOptions } from './verify-chain.js';

export interface AppendOptions {
  /**
   * Epoch ms after which the record is no longer written: an append still waiting then (SQLite:
   * for another process's write lock) is refused with LEDGER_UNAVAILABLE, and nothing is
   * recorded. A decision's answer thus never waits on the ledger past its caller's patience.
   */
  until?: number;
}

/** Where decisions are recorded. A decision is acknowledged only after append resolves. */
export interface Ledger {
  append(decision: Decision, input: unknown, opts?: AppendOptions): Promise<void>;
  /**
   * true when a recorded override already used this break-glass request. `append` refuses a
   * second override of one request with BREAK_GLASS_REPLAYED, decided under its write lock.
   */
  consumed(requestId: string): Promise<boolean>;
  /**
   * Records a break-glass request's acceptance, refusal or revocation in the chain
   * (break-glass-record.ts). Refused with a BreakGlassConflict, decided under the write lock,
   * when the request is already stored, or revoked (a second revocation, a request stored after
   * its revocation). Only the hash-chained ledgers (SQLite, PostgreSQL) store requests.
   */
  appendBreakGlass?(entry: BreakGlassEntry, opts?: AppendOptions): Promise<void>;
  /** a stored request (its acceptance, and its revocation if any) */
  breakGlassRequest?(requestId: string): Promise<StoredBreakGlass | undefined>;
  /** break-glass records (accepted, refused, revoked), newest first */
  breakGlassRecords?(limit?: number): Promise<BreakGlassRecord[]>;
  close(): Promise<void>;
}

/**
 * The one query over recorded decisions: CLI flags, HTTP query strings and every backend. Only
 * decisions: break-glass records are read with breakGlassRequest and breakGlassRecords.
 */
export interface LedgerQuery {
  /** "sha256:<hex>" */
  subject?: string;
  environment?: string;
  outcome?: Outcome;
  /** RFC 3339, inclusive */
  from?: string;
  /** RFC 3339, exclusive */
  to?: string;
  requester?: string;
  /** a violated (or overridden) rule id */
  rule?: string;
  /** newest first; default 100 */
  limit?: number;
}

/** What an auditor asks of a verification besides the key: checkpoints held outside, size, cadence. */
export type LedgerVerifyOptions = Omit<VerifyOptions, 'indexes'>;

/** A ledger that can check itself: every backend does it its own way, with the same answers. */
export interface VerifiableLedger {
  /**
   * Everything `gate audit verify` checks: the records, their indexes, single use of
   * break-glass requests, the checkpoints stored and held outside, their cadence.
   */
  verify(publicKey?: KeyObject, opts?: LedgerVerifyOptions): Promise<ChainVerification>;
}

/** A hash-chained ledger an auditor can query and verify (SQLite, PostgreSQL). */
export interface AuditLedger extends Ledger, VerifiableLedger {
  query(q: LedgerQuery): Promise<LedgerRecord[]>;
  get(id: string): Promise<LedgerRecord | undefined>;
  /** every decision record in chain order, streamed (break-glass records left out) */
  records(): AsyncIterable<LedgerRecord>;
  /** every record of the chain in order, decisions and break-glass records: verification, export */
  entries(): AsyncIterable<LedgerEntry>;
  checkpoints(): Promise<Checkpoint[]>;
  head(): Promise<{ size: number; hash: string }>;
  /** the derived index tables, for verification to prove them equal to the records */
  indexTables(): IndexTables;
}
