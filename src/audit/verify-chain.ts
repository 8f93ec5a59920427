import type { KeyObject } from 'node:crypto';
import type { GateErrorCode } from '../errors.js';
import type { IndexAudit } from './index-audit.js';
import { isBreakGlassRecord, type LedgerEntry } from './break-glass-record.js';
import {
  checkpointVerifies,
  GENESIS,
  recordHash,
  type Checkpoint,
  type LedgerRecord,
} from './record.js';

/** What `gate audit verify` can find wrong, as codes (src/errors.ts). */
export type LedgerFailureCode = Extract<
  GateErrorCode,
  | 'LEDGER_CHAIN_BROKEN'
  | 'LEDGER_INDEX_MISMATCH'
  | 'LEDGER_CHECKPOINT_INVALID'
  | 'LEDGER_CHECKPOINT_MISSING'
  | 'LEDGER_FORKED'
  | 'LEDGER_TRUNCATED'
  | 'BREAK_GLASS_REPLAYED'
>;

export interface Broken {
  seq: number;
  id?: string;
  code: LedgerFailureCode;
  /** the index table that disagrees with the records */
  table?: string;
  reason: string;
}

export interface ChainVerification {
  ok: boolean;
  records: number;
  checkpoints: number;
  /** the first record (or checkpoint, or index row) that does not fit the chain */
  firstBroken?: Broken;
  /**
   * false for a ledger without a hash chain (JSON Lines): only the records' shape and single use
   * were checked; an edited or removed record cannot be seen.
   */
  chained?: false;
}

export interface VerifyOptions {
  /** checkpoints held outside the ledger (published, or kept by an auditor): must be signed */
  external?: Checkpoint[];
  /** the ledger must hold at least this many records */
  expectSize?: number;
  /** a checkpoint is signed every this many records (ledger.checkpointEvery.records) */
  everyRecords?: number;
  /** cross-checks the index tables against the records (index-audit.ts) */
  indexes?: IndexAudit;
}

/**
 * Walks the chain in order: each record's hash must be its own, its prevHash the previous
 * record's hash, its seq the next number, its indexed copies equal to its content; then the
 * indexes, the checkpoints stored and held outside, and their cadence (conclude).
 */
export async function verifyChain(
  records: AsyncIterable<LedgerEntry>,
  checkpoints: Checkpoint[],
  publicKey?: KeyObject,
  opts: VerifyOptions = {},
): Promise<ChainVerification> {
  // only the heads a checkpoint names are kept: memory stays flat at millions of records
  const wanted = wantedSizes(checkpoints, opts);
  const heads = new Map<number, string>();
  let prev = GENESIS;
  let n = 0;
  for await (const r of records) {
    n++;
    const at = (code: LedgerFailureCode, reason: string, table?: string) =>
      failed(n - 1, { seq: r.seq, id: r.id, code, reason, ...(table ? { table } : {}) });
    if (r.seq !== n) return at('LEDGER_CHAIN_BROKEN', `expected record ${n}, found ${r.seq}`);
    if (r.prevHash !== prev)
      return at('LEDGER_CHAIN_BROKEN', 'its previous hash does not match the record before it');
    if (recordHash(r as LedgerRecord) !== r.hash) {
      const drift = indexDrift(r as LedgerRecord);
      if (drift) return at('LEDGER_INDEX_MISMATCH', drift.reason, drift.table);
      return at('LEDGER_CHAIN_BROKEN', 'its content does not match its hash (edited)');
    }
    const bg = isBreakGlassRecord(r) ? r.breakGlass : undefined;
    const fits = isBreakGlassRecord(r)
      ? isEvent(bg) && !('decision' in r)
      : (r as LedgerRecord).decision?.id === r.id;
    if (!fits) return at('LEDGER_CHAIN_BROKEN', 'its indexed fields do not match its decision');
    const override = bg ? undefined : (r as LedgerRecord).decision.override;
    const index = opts.indexes?.record({
      seq: r.seq,
      id: r.id,
      outcome: r.outcome,
      subjects: r.subjects,
      rules: r.rules,
      requestId: bg ? bg.requestId : override?.requestId,
      ...(override?.reuse ? { reuse: override.reuse } : {}),
      ...(bg ? { breakGlass: bg.action } : {}),
    });
    if (index) return failed(n - 1, index);
    if (wanted.has(n)) heads.set(n, r.hash);
    prev = r.hash;
  }
  return conclude(n, heads, checkpoints, publicKey, opts);
}

/** A break-glass record's event has one of the three actions. */
export function isEvent(e: unknown): e is { action: 'accepted' | 'refused' | 'revoked' } {
  const action = (e as { action?: unknown } | undefined)?.action;
  return action === 'accepted' || action === 'refused' || action === 'revoked';
}

/** The sizes whose head hash a checkpoint (stored or held outside) names. */
export function wantedSizes(checkpoints: Checkpoint[], opts: VerifyOptions): Set<number> {
  return new Set([...checkpoints, ...(opts.external ?? [])].map((c) => c.size));
}

export function failed(records: number, broken: Broken): ChainVerification {
  return { ok: false, records, checkpoints: 0, firstBroken: broken };
}

/**
 * After the last of `n` records (`heads`: the hash at each size a checkpoint names): rows of the
 * indexes no record accounts for, the stored checkpoints, the ones held outside, the expected
 * size, and the cadence.
 */
export async function conclude(
  n: number,
  heads: Map<number, string>,
  checkpoints: Checkpoint[],
  publicKey: KeyObject | undefined,
  opts: VerifyOptions,
): Promise<ChainVerification> {
  const index = await opts.indexes?.finish(n);
  if (index) return failed(n, index);
  const stored = checkCheckpoints(checkpoints, heads, n, publicKey);
  if (!stored.ok) return stored;
  const held = checkCheckpoints(opts.external ?? [], heads, n, publicKey, 'held outside');
  if (!held.ok) return held;
  if (opts.expectSize !== undefined && n < opts.expectSize)
    return failed(n, {
      seq: n + 1,
      code: 'LEDGER_TRUNCATED',
      reason: `expected at least ${opts.expectSize} records, the ledger has ${n} (records were removed)`,
    });
  const gap = opts.everyRecords ? cadenceGap(checkpoints, n, opts.everyRecords) : undefined;
  if (gap) return failed(n, gap);
  return { ok: true, records: n, checkpoints: checkpoints.length };
}

/**
 * Every checkpoint must be signed by the ledger key (a checkpoint held outside must be: without
 * the key it proves nothing) and name a head hash the chain had at that size.
 */
export function checkCheckpoints(
  checkpoints: Checkpoint[],
  heads: Map<number, string>,
  n: number,
  publicKey?: KeyObject,
  where?: string,
): ChainVerification {
  for (const c of checkpoints) {
    const bad = (code: LedgerFailureCode, reason: string): ChainVerification =>
      failed(n, {
        seq: c.size,
        code,
        reason: `checkpoint${where ? ` ${where}` : ''} at size ${c.size}: ${reason}`,
      });
    if (where && !publicKey)
      return bad('LEDGER_CHECKPOINT_INVALID', 'cannot be checked without the ledger public key');
    if (publicKey && !checkpointVerifies(c, publicKey))
      return bad('LEDGER_CHECKPOINT_INVALID', 'signature does not verify');
    if (c.size > n)
      return bad(
        'LEDGER_TRUNCATED',
        `names ${c.size} records, the ledger has ${n} (records were removed)`,
      );
    if (heads.get(c.size) !== c.headHash)
      return bad('LEDGER_FORKED', 'head hash differs from the chain (history was rewritten)');
  }
  return { ok: true, records: n, checkpoints: checkpoints.length };
}

/**
 * The ledger signs its head in the transaction that appends the `every`-th record since the last
 * checkpoint, so from the first checkpoint on no two are more than `every` records apart and no
 * `every` records follow the last one. A ledger may have run without a key before its first.
 */
export function cadenceGap(
  checkpoints: Checkpoint[],
  n: number,
  every: number,
): Broken | undefined {
  const sizes = [...new Set(checkpoints.map((c) => c.size))].sort((a, b) => a - b);
  const missing = (after: number, reason: string): Broken => ({
    seq: after + every,
    code: 'LEDGER_CHECKPOINT_MISSING',
    reason: `${reason}: one is signed every ${every} records (checkpoints were removed)`,
  });
  if (sizes.length === 0)
    return n >= every ? missing(0, `${n} records and no checkpoint`) : undefined;
  for (let i = 1; i < sizes.length; i++) {
    const [a, b] = [sizes[i - 1]!, sizes[i]!];
    if (b - a > every) return missing(a, `no checkpoint between sizes ${a} and ${b}`);
  }
  const last = sizes[sizes.length - 1]!;
  if (n - last >= every)
    return missing(last, `${n - last} records after the checkpoint at size ${last} and none since`);
  return undefined;
}

/**
 * A record whose indexed copies (columns, index tables) were laid over its content and differ
 * (`bodyDiffers`: the content's values; `indexTables`: where each copy lives) while the content
 * itself still matches its hash: the index was edited, not the record.
 */
function indexDrift(r: LedgerRecord): { table: string; reason: string } | undefined {
  const x = r as LedgerRecord & {
    bodyDiffers?: Record<string, unknown>;
    indexTables?: Record<string, string>;
  };
  if (!x.bodyDiffers) return undefined;
  const { bodyDiffers, indexTables, ...rest } = x;
  const body: Record<string, unknown> = { ...rest };
  for (const [k, v] of Object.entries(bodyDiffers)) {
    if (v === null) delete body[k];
    else body[k] = v;
  }
  if (recordHash(body as unknown as LedgerRecord) !== r.hash) return undefined;
  const fields = Object.keys(bodyDiffers);
  const table = indexTables?.[fields[0]!] ?? 'records';
  return { table, reason: `its ${fields.join(', ')} in ${table} differ from its content (edited)` };
}
