import { GateError } from '../errors.js';
import type { Outcome } from '../decision.js';
import { BREAK_GLASS_OUTCOME } from './break-glass-record.js';
import type { LedgerQuery } from './ledger.js';
import type { LedgerRecord } from './record.js';

/**
 * A record row with its subject and rule index entries, in order. The time is read as exact
 * microseconds since the epoch (before PostgreSQL 14 extract returns a float).
 */
export const SELECT_RECORD = `
SELECT r.seq, r.id,
       extract(epoch FROM date_trunc('second', r.time))::bigint * 1000000
         + extract(microseconds FROM r.time)::bigint % 1000000 AS time_us,
       r.environment,
       r.outcome, r.requester, r.prev_hash, r.hash, r.body,
       ARRAY(SELECT s.subject FROM record_subjects s WHERE s.seq = r.seq ORDER BY s.ord) AS subjects,
       ARRAY(SELECT u.rule FROM record_rules u WHERE u.seq = r.seq ORDER BY u.ord) AS rules
FROM records r`;

export interface RecordRow {
  seq: string;
  id: string;
  time_us: string;
  environment: string;
  outcome: string;
  requester: string | null;
  prev_hash: string;
  hash: string;
  body: string;
  subjects: string[];
  rules: string[];
}

/**
 * The record as stored: its canonical body with every indexed column and index row laid over it.
 * A column or index row edited behind the ledger's back thus changes the record and breaks its
 * hash, exactly like an edit of the body; where they differ, the record also carries what the
 * body said (`bodyDiffers`) and where each copy lives (`indexTables`), so verification can tell
 * an edited index from an edited record and name the table.
 */
export function toRecord(row: RecordRow): LedgerRecord {
  const body = parseBody(row.body);
  const timeUs = BigInt(row.time_us);
  const bodyTime = typeof body.time === 'string' ? body.time : undefined;
  const columns: Record<string, unknown> = {
    seq: Number(row.seq),
    id: row.id,
    time:
      bodyTime !== undefined && instantMicros(bodyTime) === timeUs ? bodyTime : isoMicros(timeUs),
    environment: row.environment,
    outcome: row.outcome,
    subjects: row.subjects,
    rules: row.rules,
    prevHash: row.prev_hash,
    requester: row.requester ?? undefined,
  };
  const record: Record<string, unknown> = { ...body, ...columns, hash: row.hash };
  if (row.requester === null) delete record.requester;
  const differs = Object.keys(columns).filter(
    (k) => JSON.stringify(body[k]) !== JSON.stringify(columns[k]),
  );
  if (differs.length === 0) return record as unknown as LedgerRecord;
  record.bodyDiffers = Object.fromEntries(differs.map((k) => [k, body[k] ?? null]));
  record.indexTables = Object.fromEntries(differs.map((k) => [k, INDEX_TABLES[k] ?? 'records']));
  return record as unknown as LedgerRecord;
}

const INDEX_TABLES: Record<string, string> = {
  subjects: 'record_subjects',
  rules: 'record_rules',
};

function parseBody(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // an unreadable body keeps only the columns: its hash no longer matches
  }
  return {};
}

/** Microseconds since the epoch of an RFC 3339 time, as PostgreSQL stores it. */
function instantMicros(iso: string): bigint | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  const fraction = /T\d\d:\d\d:\d\d\.(\d+)/.exec(iso)?.[1] ?? '';
  return BigInt(ms) * 1000n + BigInt(fraction.slice(3, 6).padEnd(3, '0'));
}

function isoMicros(us: bigint): string {
  const seconds = new Date(Number(us / 1000n)).toISOString().slice(0, 19);
  return `${seconds}.${String(us % 1_000_000n).padStart(6, '0')}Z`;
}

export { toCheckpoint, type CheckpointRow } from './record.js';

const OUTCOMES: readonly Outcome[] = ['allow', 'deny', 'override', 'error'];

/** The SQL and parameters of a ledger query, newest first. */
export function querySql(q: LedgerQuery): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const time = (v: string, name: string) => {
    if (Number.isNaN(Date.parse(v))) {
      throw new GateError('USAGE_ERROR', `${name} must be an rfc 3339 time, got ${v}`);
    }
    return `${param(v)}::timestamptz`;
  };
  if (q.subject !== undefined) {
    where.push(
      `EXISTS (SELECT 1 FROM record_subjects s WHERE s.seq = r.seq AND s.subject = ${param(q.subject)})`,
    );
  }
  if (q.rule !== undefined) {
    where.push(
      `EXISTS (SELECT 1 FROM record_rules u WHERE u.seq = r.seq AND u.rule = ${param(q.rule)})`,
    );
  }
  if (q.environment !== undefined) where.push(`r.environment = ${param(q.environment)}`);
  if (q.outcome !== undefined) {
    if (!OUTCOMES.includes(q.outcome)) {
      throw new GateError('USAGE_ERROR', `outcome must be one of ${OUTCOMES.join(', ')}`);
    }
    where.push(`r.outcome = ${param(q.outcome)}`);
  }
  if (q.requester !== undefined) where.push(`r.requester = ${param(q.requester)}`);
  if (q.from !== undefined) where.push(`r.time >= ${time(q.from, 'from')}`);
  if (q.to !== undefined) where.push(`r.time < ${time(q.to, 'to')}`);
  const limit = q.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new GateError('USAGE_ERROR', `limit must be a positive integer, got ${limit}`);
  }
  // decisions only: break-glass records are read on their own (postgres-index.ts)
  if (q.outcome === undefined) where.push(`r.outcome <> '${BREAK_GLASS_OUTCOME}'`);
  const filter = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  return {
    text: `${SELECT_RECORD}${filter} ORDER BY r.seq DESC LIMIT ${param(limit)}`,
    values,
  };
}

/** PostgreSQL and connection errors as the ledger's one error: one lowercase line. */
export function unavailable(what: string, err: unknown): GateError {
  if (err instanceof GateError) return err;
  return new GateError('LEDGER_UNAVAILABLE', `${what}: ${describe(err)}`, { cause: err });
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: unknown[] } | undefined;
  let text = e?.message || e?.code || '';
  // a host name with several addresses fails with an AggregateError and an empty message
  if (!text && Array.isArray(e?.errors) && e.errors.length) return describe(e.errors[0]);
  if (!text) text = String(err);
  return text.replace(/\s+/g, ' ').trim().toLowerCase();
}
