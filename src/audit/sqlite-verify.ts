import { createHash, type KeyObject } from 'node:crypto';
import { BREAK_GLASS_OUTCOME } from './break-glass-record.js';
import { createIndexAudit, type IndexAudit, type IndexedRecord } from './index-audit.js';
import { GENESIS, toCheckpoint, type CheckpointRow } from './record.js';
import { sqliteIndexTables } from './sqlite-index.js';
import { openReadOnly, type Db } from './sqlite-schema.js';
import {
  conclude,
  failed,
  isEvent,
  wantedSizes,
  type ChainVerification,
  type LedgerFailureCode,
  type VerifyOptions,
} from './verify-chain.js';

type Row = [number, string, string, string, string, string | null, string, string, string];

/** Rows checked per step; the event loop runs between steps. */
const STEP = 5000;
const HEAD = '{"decision":{';
/** A break-glass record (break-glass-record.ts): its event sorts first, as the decision does. */
const BREAK_GLASS_HEAD = '{"breakGlass":{';
const TAIL = ',"environment":';

/**
 * verifyChain (verify-chain.ts) over the stored rows instead of parsed records, with the same
 * checks in the same order and the same answers: each row's seq is the next number, its
 * prev_hash the previous row's hash, its hash the SHA-256 of its body (the canonical JSON the
 * hash was made over, so no re-canonicalisation is needed), its indexed columns equal to the
 * body's fields, its id the decision's, its index rows present; then the indexes' leftovers and
 * the checkpoints. Several times faster than parsing and re-canonicalising each record.
 */
export async function verifyStoredChain(
  file: string,
  busyTimeoutMs: number,
  publicKey: KeyObject | undefined,
  opts: Omit<VerifyOptions, 'indexes'> = {},
): Promise<ChainVerification> {
  // Its own read-only connection in one read transaction: the checkpoints, the records and the
  // indexes are one consistent snapshot while the ledger's connection goes on appending.
  const db = openReadOnly(file, busyTimeoutMs);
  try {
    db.exec('BEGIN');
    const checkpoints = (
      db
        .prepare('SELECT size, head_hash, time, key_id, signature FROM checkpoints ORDER BY size')
        .all() as CheckpointRow[]
    ).map(toCheckpoint);
    const indexes = createIndexAudit(sqliteIndexTables(db));
    const wanted = wantedSizes(checkpoints, opts);
    const walked = await walk(db, indexes, wanted);
    if ('ok' in walked) return walked;
    return await conclude(walked.n, walked.heads, checkpoints, publicKey, { ...opts, indexes });
  } finally {
    db.close();
  }
}

async function walk(
  db: Db,
  indexes: IndexAudit,
  wanted: Set<number>,
): Promise<ChainVerification | { n: number; heads: Map<number, string> }> {
  const heads = new Map<number, string>();
  let prev = GENESIS;
  let n = 0;
  const rows = db
    .prepare(
      'SELECT seq, id, time, environment, outcome, requester, prev_hash, hash, body FROM records ORDER BY seq',
    )
    .raw(true)
    .iterate() as IterableIterator<Row>;
  for (const row of rows) {
    n++;
    const [seq, id, , , , , prevHash, hash, body] = row;
    const broken = (code: LedgerFailureCode, reason: string, table?: string) =>
      failed(n - 1, { seq, id, code, reason, ...(table ? { table } : {}) });
    if (seq !== n) return broken('LEDGER_CHAIN_BROKEN', `expected record ${n}, found ${seq}`);
    if (prevHash !== prev)
      return broken('LEDGER_CHAIN_BROKEN', 'its previous hash does not match the record before it');
    if (createHash('sha256').update(body).digest('hex') !== hash)
      return broken('LEDGER_CHAIN_BROKEN', 'its content does not match its hash (edited)');
    const parsed = parseBody(body);
    const drift = parsed && columnsDrift(row, parsed.tail);
    if (!parsed || drift)
      return broken(
        'LEDGER_INDEX_MISMATCH',
        `its ${drift ?? 'columns'} in records differ from its content (edited)`,
        'records',
      );
    const fits = parsed.event
      ? isEvent(parsed.event) && row[4] === BREAK_GLASS_OUTCOME
      : parsed.decision.id === id && row[4] !== BREAK_GLASS_OUTCOME;
    if (!fits) return broken('LEDGER_CHAIN_BROKEN', 'its indexed fields do not match its decision');
    const index = indexes.record(indexed(row, parsed));
    if (index) return failed(n - 1, index);
    if (wanted.has(n)) heads.set(n, hash);
    prev = hash;
    if (n % STEP === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return { n, heads };
}

interface Parsed {
  tail: Record<string, unknown>;
  decision: { id?: unknown; override?: { requestId?: unknown; reuse?: unknown } };
  /** a break-glass record's event, instead of a decision */
  event?: { action?: unknown; requestId?: unknown };
}

/**
 * The body is canonical JSON with sorted keys: the decision object first, then environment, id,
 * input, outcome, prevHash, requester, rules, seq, subjects, time, which hold no objects, so the
 * last `,"environment":` (a key: quotes inside strings are escaped) ends the decision.
 */
function parseBody(body: string): Parsed | undefined {
  const head = body.startsWith(HEAD)
    ? HEAD
    : body.startsWith(BREAK_GLASS_HEAD)
      ? BREAK_GLASS_HEAD
      : undefined;
  if (head === undefined) return undefined;
  const at = body.lastIndexOf(TAIL);
  if (at < 0) return undefined;
  try {
    const first = JSON.parse(body.slice(head.length - 1, at)) as Record<string, unknown>;
    return {
      tail: JSON.parse(`{${body.slice(at + 1)}`) as Record<string, unknown>,
      ...(head === HEAD
        ? { decision: first as Parsed['decision'] }
        : { decision: {}, event: first as Parsed['event'] }),
    };
  } catch {
    return undefined;
  }
}

/** The columns that differ from the body's fields, if any (the generic check names them too). */
function columnsDrift(row: Row, tail: Record<string, unknown>): string | undefined {
  const [seq, id, time, environment, outcome, requester, prevHash] = row;
  const columns = {
    seq,
    id,
    time,
    environment,
    outcome,
    requester: requester ?? undefined,
    prevHash,
  };
  const differ = Object.entries(columns).filter(([k, v]) => tail[k] !== v);
  return differ.length ? differ.map(([k]) => k).join(', ') : undefined;
}

function indexed(row: Row, { tail, decision, event }: Parsed): IndexedRecord {
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const requestId = event ? event.requestId : decision.override?.requestId;
  return {
    seq: row[0],
    id: row[1],
    outcome: row[4],
    subjects: strings(tail.subjects),
    rules: strings(tail.rules),
    requestId: typeof requestId === 'string' ? requestId : undefined,
    ...(!event && decision.override?.reuse === 'until_expiry'
      ? { reuse: 'until_expiry' as const }
      : {}),
    ...(event && isEvent(event) ? { breakGlass: event.action } : {}),
  };
}
