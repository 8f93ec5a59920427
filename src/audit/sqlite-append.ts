import type { Decision } from '../decision.js';
import { GateError } from '../errors.js';
import {
  conflictOf,
  isBreakGlassRecord,
  makeBreakGlassRecord,
  requestIdOf,
  type BreakGlassEntry,
  type LedgerEntry,
} from './break-glass-record.js';
import type { Checkpointer } from './checkpointer.js';
import { GENESIS, makeRecordWithBody, type Checkpoint } from './record.js';
import { overrideOf, storedBreakGlass } from './sqlite-index.js';
import { toRow } from './sqlite-rows.js';
import { isBusy, isRecordFault, sql, type Db } from './sqlite-schema.js';

/**
 * Appends a batch in one IMMEDIATE transaction (one fsync at COMMIT): the head is read inside
 * it, so processes sharing the file serialise and form one chain. A record that fails on its own
 * (a duplicate id, a replayed break-glass request) is rolled back to its savepoint and reported
 * in the returned map by its index in the batch; any other failure rolls back the whole batch and
 * is thrown. Checkpoints that fall due are signed and stored in the same transaction. Returns
 * undefined, having done nothing, when another connection holds the write lock: the caller
 * retries without blocking its event loop in SQLite's sleeping busy handler. The checkpoints
 * signed are added to `signed` once committed, to be published.
 */
export function appendBatch(
  d: Db,
  batch: Appendable[],
  checkpointer: Checkpointer | undefined,
  signed?: Checkpoint[],
): Map<number, unknown> | undefined {
  if (!tryBegin(d)) return undefined;
  const failed = new Map<number, unknown>();
  try {
    let head = headOf(d);
    let last = lastCheckpoint(d);
    const made: Checkpoint[] = [];
    batch.forEach((item, i) => {
      sql(d, 'SAVEPOINT record').run();
      try {
        const { record, body } =
          'breakGlass' in item && item.breakGlass
            ? makeBreakGlassRecord(head.size + 1, head.hash, item.breakGlass)
            : makeRecordWithBody(head.size + 1, head.hash, item.decision!, item.input);
        insertRecord(d, record, body);
        const next = { size: record.seq, hash: record.hash };
        const checkpoint = checkpointer?.due(next, last);
        if (checkpoint) insertCheckpoint(d, checkpoint);
        sql(d, 'RELEASE record').run();
        head = next;
        if (checkpoint) made.push((last = checkpoint));
      } catch (err) {
        if (!isRecordFault(err) || !d.inTransaction) throw err;
        sql(d, 'ROLLBACK TO record').run();
        sql(d, 'RELEASE record').run();
        failed.set(i, err);
      }
    });
    sql(d, 'COMMIT').run();
    signed?.push(...made);
    return failed;
  } catch (err) {
    try {
      if (d.inTransaction) d.exec('ROLLBACK');
    } catch {
      // the caller drops the connection
    }
    throw err;
  }
}

/** What one append writes: a decision with its policy input, or a break-glass record. */
export type Appendable =
  | { decision: Decision; input: unknown; breakGlass?: undefined }
  | { breakGlass: BreakGlassEntry; decision?: undefined; input?: undefined };

/**
 * BEGIN IMMEDIATE without waiting: false when another connection holds the write lock. (The
 * statements are prepared once per connection: this runs for every batch.)
 */
function tryBegin(d: Db): boolean {
  const timeout = sql(d, 'PRAGMA busy_timeout').get() as { timeout: number };
  sql(d, 'PRAGMA busy_timeout = 0').run();
  try {
    sql(d, 'BEGIN IMMEDIATE').run();
    return true;
  } catch (err) {
    if (isBusy(err)) return false;
    throw err;
  } finally {
    sql(d, `PRAGMA busy_timeout = ${timeout.timeout}`).run();
  }
}

/** Signs the head now if a checkpoint is due (the timer's tick for a quiet ledger); skips when busy. */
export function checkpointNow(d: Db, checkpointer: Checkpointer): Checkpoint | undefined {
  if (!tryBegin(d)) return undefined; // busy: the next tick or append signs it
  try {
    const checkpoint = checkpointer.due(headOf(d), lastCheckpoint(d));
    if (checkpoint) insertCheckpoint(d, checkpoint);
    d.exec('COMMIT');
    return checkpoint;
  } catch (err) {
    if (d.inTransaction) d.exec('ROLLBACK');
    throw err;
  }
}

export function headOf(d: Db): { size: number; hash: string } {
  const row = sql(d, 'SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1').get() as
    { seq: number; hash: string } | undefined;
  return row ? { size: row.seq, hash: row.hash } : { size: 0, hash: GENESIS };
}

export function lastCheckpoint(d: Db): { size: number; time: string } | undefined {
  return sql(d, 'SELECT size, time FROM checkpoints ORDER BY size DESC LIMIT 1').get() as
    { size: number; time: string } | undefined;
}

export function insertCheckpoint(d: Db, c: Checkpoint): void {
  sql(
    d,
    'INSERT INTO checkpoints (size, head_hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)',
  ).run(c.size, c.headHash, c.time, c.keyId, c.signature);
}

export function insertRecord(d: Db, record: LedgerEntry, body?: string): void {
  const concerns = requestIdOf(record);
  if (concerns !== undefined) {
    const conflict = conflictOf(record, storedBreakGlass(d, concerns));
    if (conflict) throw conflict;
  }
  // an override of a request reusable until it expires consumes nothing; any other is single use
  const requestId =
    !isBreakGlassRecord(record) && record.decision.override?.reuse !== 'until_expiry'
      ? concerns
      : undefined;
  if (requestId !== undefined) refuseReplay(d, requestId);
  const row = toRow(record, body);
  sql(
    d,
    `INSERT INTO records (seq, id, time, environment, outcome, requester, prev_hash, hash, body)
     VALUES (@seq, @id, @time, @environment, @outcome, @requester, @prev_hash, @hash, @body)`,
  ).run(row);
  const subject = sql(d, 'INSERT OR IGNORE INTO subjects (subject, seq) VALUES (?, ?)');
  for (const s of record.subjects) subject.run(s, record.seq);
  const rule = sql(d, 'INSERT OR IGNORE INTO rules (rule, seq) VALUES (?, ?)');
  for (const r of record.rules) rule.run(r, record.seq);
  if (requestId !== undefined)
    sql(d, 'INSERT INTO consumed (request_id, seq) VALUES (?, ?)').run(requestId, record.seq);
}

/**
 * Single use, decided inside the append's write transaction (so a second process racing with
 * the same request loses here) by the chained records themselves; the consumed table is an
 * index of them that verification proves equal, and a row there that no record explains means
 * the file was edited: the gate cannot decide rather than guess.
 */
function refuseReplay(d: Db, requestId: string): void {
  const used = overrideOf(d, requestId);
  if (used !== undefined)
    throw new GateError(
      'BREAK_GLASS_REPLAYED',
      `break-glass request ${requestId} was already used by record ${used}`,
    );
  const indexed = sql(d, 'SELECT seq FROM consumed WHERE request_id = ?').get(requestId) as
    { seq: number } | undefined;
  if (indexed)
    throw new GateError(
      'LEDGER_UNAVAILABLE',
      `the consumed index names break-glass request ${requestId} for record ${indexed.seq}, which did not use it (run gate audit verify)`,
    );
}
