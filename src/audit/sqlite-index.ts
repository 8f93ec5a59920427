import {
  BREAK_GLASS_OUTCOME,
  storedOf,
  type BreakGlassRecord,
  type StoredBreakGlass,
} from './break-glass-record.js';
import type { IndexRow, IndexTables } from './index-audit.js';
import { toRecord, type RecordRow } from './sqlite-rows.js';
import { sql, type Db } from './sqlite-schema.js';

const COLUMNS = 'seq, id, time, environment, outcome, requester, prev_hash, hash, body';

/**
 * A break-glass request's acceptance and revocation, read from the chained records (through the
 * outcome index): the state every use of the request is checked against.
 */
export function storedBreakGlass(d: Db, requestId: string): StoredBreakGlass | undefined {
  const rows = sql(
    d,
    `SELECT ${COLUMNS} FROM records WHERE outcome = '${BREAK_GLASS_OUTCOME}'
       AND json_extract(body, '$.breakGlass.requestId') = ?
       AND json_extract(body, '$.breakGlass.action') IN ('accepted', 'revoked') ORDER BY seq`,
  ).all(requestId) as RecordRow[];
  return storedOf(
    requestId,
    rows.map((r) => toRecord(r) as unknown as BreakGlassRecord),
  );
}

/** The newest break-glass records (accepted, refused, revoked). */
export function breakGlassRecordsOf(d: Db, limit: number): BreakGlassRecord[] {
  const rows = sql(
    d,
    `SELECT ${COLUMNS} FROM records WHERE outcome = '${BREAK_GLASS_OUTCOME}' ORDER BY seq DESC LIMIT ?`,
  ).all(limit) as RecordRow[];
  return rows.map((r) => toRecord(r) as unknown as BreakGlassRecord);
}

/**
 * The override record that used a break-glass request, read from the chained records themselves
 * (through the outcome index, which verification proves equal to the records), not from the
 * `consumed` table: deleting a row there cannot make a request usable again.
 */
export function overrideOf(d: Db, requestId: string): number | undefined {
  const row = sql(
    d,
    `SELECT seq FROM records WHERE outcome = 'override'
       AND json_extract(body, '$.decision.override.requestId') = ? ORDER BY seq LIMIT 1`,
  ).get(requestId) as { seq: number } | undefined;
  return row?.seq;
}

const TABLES = [
  { table: 'subjects', column: 'subject' },
  { table: 'rules', column: 'rule' },
] as const;

/**
 * The SQLite ledger's index tables for verification, on the connection (and read transaction)
 * that reads the records: a lookup per row a record implies, then counts, so no row is missing
 * and none is extra, without holding the index in memory.
 */
export function sqliteIndexTables(d: Db): IndexTables {
  const has = {
    subjects: sql(d, 'SELECT 1 FROM subjects WHERE subject = ? AND seq = ?'),
    rules: sql(d, 'SELECT 1 FROM rules WHERE rule = ? AND seq = ?'),
  };
  return {
    consumedTable: 'consumed',
    lacks(r) {
      for (const value of r.subjects)
        if (has.subjects.get(value, r.seq) === undefined)
          return { table: 'subjects', seq: r.seq, value };
      for (const value of r.rules)
        if (has.rules.get(value, r.seq) === undefined) return { table: 'rules', seq: r.seq, value };
      return undefined;
    },
    async stray(n, expected) {
      for (const { table, column } of TABLES) {
        const count = sql(d, `SELECT count(*) FROM ${table} WHERE seq <= ?`).pluck().get(n);
        // every implied row was found, so a count above them is a row no record implies
        if (count !== expected[table]) return strayRow(d, table, column, n);
        const orphan = sql(
          d,
          `SELECT ${column} AS value, seq FROM ${table} x
             WHERE seq > ? AND NOT EXISTS (SELECT 1 FROM records r WHERE r.seq = x.seq) LIMIT 1`,
        ).get(n) as { value: string; seq: number } | undefined;
        if (orphan) return { table, ...orphan };
      }
      return undefined;
    },
    async consumed(n) {
      return sql(
        d,
        `SELECT request_id AS requestId, seq FROM consumed c
           WHERE seq <= ? OR NOT EXISTS (SELECT 1 FROM records r WHERE r.seq = c.seq)`,
      ).all(n) as Array<{ requestId: string; seq: number }>;
    },
  };
}

/** Names a row of `table` that its record does not list (read only once the counts disagree). */
function strayRow(d: Db, table: string, column: string, n: number): IndexRow {
  const row = sql(
    d,
    `SELECT ${column} AS value, seq FROM ${table} x WHERE seq <= ? AND NOT EXISTS (
       SELECT 1 FROM records r, json_each(r.body, '$.${table}') j
       WHERE r.seq = x.seq AND j.value = x.${column}) ORDER BY seq LIMIT 1`,
  ).get(n) as { value: string; seq: number } | undefined;
  return row ? { table, ...row } : { table, seq: n, value: 'a duplicated row' };
}
