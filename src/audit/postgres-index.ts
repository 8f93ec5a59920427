import type pg from 'pg';
import type { PoolClient } from 'pg';
import { GateError } from '../errors.js';
import {
  BREAK_GLASS_OUTCOME,
  storedOf,
  type BreakGlassRecord,
  type StoredBreakGlass,
} from './break-glass-record.js';
import type { IndexTables } from './index-audit.js';

type Read = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>;

/**
 * The override that used a break-glass request, read from the chained records themselves
 * (through the outcome index), not from consumed_requests: deleting a row there cannot make a
 * request usable again.
 */
export const OVERRIDE_OF = `
SELECT seq FROM records
WHERE outcome = 'override' AND (body::jsonb #>> '{decision,override,requestId}') = $1
ORDER BY seq LIMIT 1`;

/**
 * A break-glass request's acceptance and revocation, read from the chained records (the
 * records_break_glass index): the state every use of the request is checked against.
 */
export const BREAK_GLASS_OF = `
SELECT seq, body FROM records
WHERE outcome = '${BREAK_GLASS_OUTCOME}' AND (body::jsonb #>> '{breakGlass,requestId}') = $1
  AND (body::jsonb #>> '{breakGlass,action}') IN ('accepted', 'revoked')
ORDER BY seq`;

/** Records as storedOf reads them: the body is the record without its hash. */
export function storedFromRows(
  requestId: string,
  rows: Array<{ seq: string; body: string }>,
): StoredBreakGlass | undefined {
  return storedOf(
    requestId,
    rows.map((r) => ({ ...(JSON.parse(r.body) as BreakGlassRecord), seq: Number(r.seq) })),
  );
}

/**
 * Single use, decided under the append lock by the records; a consumed_requests row that no
 * record explains means the table was edited: the gate cannot decide rather than guess.
 */
export async function refuseReplay(client: PoolClient, requestId: string): Promise<void> {
  const used = await client.query<{ seq: string }>(OVERRIDE_OF, [requestId]);
  if (used.rows[0])
    throw new GateError(
      'BREAK_GLASS_REPLAYED',
      `break-glass request ${requestId} was already used by record ${used.rows[0].seq}`,
    );
  const indexed = await client.query<{ seq: string }>(
    'SELECT seq FROM consumed_requests WHERE request_id = $1',
    [requestId],
  );
  if (indexed.rows[0])
    throw new GateError(
      'LEDGER_UNAVAILABLE',
      `the consumed_requests index names break-glass request ${requestId} for record ${indexed.rows[0].seq}, which did not use it (run gate audit verify)`,
    );
}

/**
 * The PostgreSQL ledger's index tables for verification. records() reads each record's subjects
 * and rules through record_subjects and record_rules, so a missing or extra row of an existing
 * record already changes that record; what is left are rows of records that do not exist (the
 * foreign key is a trigger, which session_replication_role = replica skips) and the single-use
 * table.
 */
export function postgresIndexTables(read: Read): IndexTables {
  return {
    consumedTable: 'consumed_requests',
    async stray() {
      for (const [table, column] of [
        ['record_subjects', 'subject'],
        ['record_rules', 'rule'],
      ] as const) {
        const rows = await read<{ value: string; seq: string }>(
          `SELECT ${column} AS value, seq FROM ${table} x
           WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.seq = x.seq) ORDER BY seq LIMIT 1`,
        );
        if (rows[0]) return { table, value: rows[0].value, seq: Number(rows[0].seq) };
      }
      return undefined;
    },
    async consumed(n) {
      const rows = await read<{ request_id: string; seq: string }>(
        `SELECT request_id, seq FROM consumed_requests c
         WHERE seq <= $1 OR NOT EXISTS (SELECT 1 FROM records r WHERE r.seq = c.seq)`,
        [n],
      );
      return rows.map((r) => ({ requestId: r.request_id, seq: Number(r.seq) }));
    },
  };
}
