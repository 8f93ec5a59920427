import { GateError } from '../errors.js';
import type { LedgerQuery } from './ledger.js';
import { BREAK_GLASS_OUTCOME, type LedgerEntry } from './break-glass-record.js';
import { canonical, type LedgerRecord } from './record.js';

/** A records row as stored. */
export interface RecordRow {
  seq: number;
  id: string;
  time: string;
  environment: string;
  outcome: string;
  requester: string | null;
  prev_hash: string;
  hash: string;
  body: string;
}

export const RECORD_COLUMNS =
  'r.seq, r.id, r.time, r.environment, r.outcome, r.requester, r.prev_hash, r.hash, r.body';

/** The row of a record: `body` is the canonical JSON that `hash` is the SHA-256 of. */
export function toRow(record: LedgerEntry, body?: string): RecordRow {
  const { hash, ...rest } = record;
  const requester = 'requester' in record ? record.requester : undefined;
  return {
    seq: record.seq,
    id: record.id,
    time: record.time,
    environment: record.environment,
    outcome: record.outcome,
    requester: requester ?? null,
    prev_hash: record.prevHash,
    hash,
    body: body ?? canonical(rest),
  };
}

/**
 * The record a row holds. Its fields are the body's, with the indexed columns laid over them;
 * when a column and the body disagree (one of them was edited), the record also carries what the
 * body said under `bodyDiffers`, so its hash cannot match whichever copy was edited and
 * verification names this record. A body that is not JSON leaves only the columns.
 */
export function toRecord(row: RecordRow): LedgerRecord {
  let body: Record<string, unknown>;
  try {
    const parsed = JSON.parse(row.body) as unknown;
    body =
      parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : {};
  } catch {
    body = {};
  }
  const columns: Record<string, unknown> = {
    seq: row.seq,
    id: row.id,
    time: row.time,
    environment: row.environment,
    outcome: row.outcome,
    requester: row.requester ?? undefined,
    prevHash: row.prev_hash,
  };
  let differs: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(columns)) {
    if (body[k] !== v) (differs ??= {})[k] = body[k] ?? null;
  }
  if (!differs) return { ...body, hash: row.hash } as unknown as LedgerRecord;
  const record: Record<string, unknown> = {
    ...body,
    ...columns,
    hash: row.hash,
    bodyDiffers: differs,
  };
  if (row.requester === null) delete record.requester;
  return record as unknown as LedgerRecord;
}

export { toCheckpoint, type CheckpointRow } from './record.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

/**
 * The SQL for a query, newest first. A subject (else a rule) drives the lookup through its
 * (key, seq) index, read backwards, so the newest matches come first without a sort; CROSS JOIN
 * keeps SQLite from choosing another order.
 */
export function querySql(q: LedgerQuery): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  const where: string[] = [];
  let from = 'records r';
  let order = 'r.seq';
  if (q.subject !== undefined) {
    from = 'subjects s CROSS JOIN records r ON r.seq = s.seq';
    order = 's.seq';
    where.push('s.subject = ?');
    params.push(q.subject);
  }
  if (q.rule !== undefined) {
    if (q.subject === undefined) {
      from = 'rules u CROSS JOIN records r ON r.seq = u.seq';
      order = 'u.seq';
      where.push('u.rule = ?');
    } else {
      where.push('EXISTS (SELECT 1 FROM rules u WHERE u.rule = ? AND u.seq = r.seq)');
    }
    params.push(q.rule);
  }
  for (const [column, value] of [
    ['environment', q.environment],
    ['outcome', q.outcome],
    ['requester', q.requester],
  ] as const) {
    if (value === undefined) continue;
    where.push(`r.${column} = ?`);
    params.push(value);
  }
  if (q.from !== undefined) {
    where.push('r.time >= ?');
    params.push(isoTime(q.from, 'from'));
  }
  if (q.to !== undefined) {
    where.push('r.time < ?');
    params.push(isoTime(q.to, 'to'));
  }
  const limit = q.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new GateError(
      'USAGE_ERROR',
      `query limit must be an integer from 1 to ${MAX_LIMIT}, found ${limit}`,
    );
  params.push(limit);
  // decisions only: break-glass records are read on their own (sqlite-index.ts)
  if (q.outcome === undefined) where.push(`r.outcome <> '${BREAK_GLASS_OUTCOME}'`);
  const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return {
    text: `SELECT ${RECORD_COLUMNS} FROM ${from} ${filter} ORDER BY ${order} DESC LIMIT ?`,
    params,
  };
}

/** Record times are the gate's `toISOString()`; a bound in any RFC 3339 form is compared in that form. */
function isoTime(value: string, name: string): string {
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms))
    throw new GateError('USAGE_ERROR', `query ${name} is not an rfc 3339 time: ${value}`);
  return new Date(ms).toISOString();
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$/;
