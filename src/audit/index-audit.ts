import type { Broken } from './verify-chain.js';

/** What a record says its index rows are: the truth every index table must equal. */
export interface IndexedRecord {
  seq: number;
  id: string;
  outcome: string;
  subjects: string[];
  rules: string[];
  /** the break-glass request an override used, or a break-glass record is about */
  requestId?: string | undefined;
  /** an override of a request reusable until it expires (no single-use row) */
  reuse?: 'until_expiry';
  /** a break-glass record (break-glass-record.ts): what happened to the request */
  breakGlass?: 'accepted' | 'refused' | 'revoked';
}

export interface IndexRow {
  table: string;
  seq: number;
  value: string;
}

/** A backend's index tables, as verification reads them (in one snapshot, or up to record n). */
export interface IndexTables {
  /** the name of the table that makes a break-glass request single-use */
  consumedTable: string;
  /**
   * The first of the record's subjects or rules its index lacks. Omitted where the records are
   * read through the index (PostgreSQL), so a missing or extra row already changes the record.
   */
  lacks?(r: IndexedRecord): IndexRow | undefined;
  /** a subject or rule row that no record accounts for (`expected`: rows records 1..n account for) */
  stray(n: number, expected: { subjects: number; rules: number }): Promise<IndexRow | undefined>;
  /** the single-use rows of records 1..n, and any row whose record does not exist */
  consumed(n: number): Promise<Array<{ requestId: string; seq: number }>>;
}

/** Checks the indexes record by record during the chain walk, then what is left over. */
export interface IndexAudit {
  record(r: IndexedRecord): Broken | undefined;
  finish(n: number): Promise<Broken | undefined>;
}

/**
 * Both directions: every row a record implies is in its index (no record hidden from queries)
 * and every row of an index is implied by a record (none made to match what it is not); a
 * break-glass request id is used by at most one override, and the single-use table says exactly
 * that, so deleting its row cannot make a request usable again unnoticed.
 */
export function createIndexAudit(tables: IndexTables): IndexAudit {
  const used = new Map<string, { seq: number; id: string }>();
  const overrides = new Map<string, { seq: number; id: string }>();
  const stored = new Map<string, { accepted?: number; revoked?: number }>();
  const expected = { subjects: 0, rules: 0 };
  return {
    record(r) {
      expected.subjects += new Set(r.subjects).size;
      expected.rules += new Set(r.rules).size;
      const misuse = breakGlassMisuse(r, stored, overrides, used);
      if (misuse) return misuse;
      const lack = tables.lacks?.(r);
      if (!lack) return undefined;
      return mismatch(
        { ...lack, id: r.id },
        `the ${lack.table} index has no row for ${lack.value} of this record (queries miss it)`,
      );
    },
    async finish(n) {
      const stray = await tables.stray(n, expected);
      if (stray)
        return mismatch(
          stray,
          `the ${stray.table} index names ${stray.value} for record ${stray.seq}, which the record does not say`,
        );
      return checkConsumed(tables.consumedTable, used, await tables.consumed(n));
    },
  };
}

const replayed = (r: IndexedRecord, reason: string): Broken => ({
  seq: r.seq,
  id: r.id,
  code: 'BREAK_GLASS_REPLAYED',
  reason,
});

/**
 * What the chain says about break-glass requests, in its order: a request is stored once and
 * revoked at most once, after it was stored; no override uses a revoked request; a single-use
 * request (an override without reuse: until_expiry) overrides once, and before no other use.
 */
function breakGlassMisuse(
  r: IndexedRecord,
  stored: Map<string, { accepted?: number; revoked?: number }>,
  overrides: Map<string, { seq: number; id: string }>,
  used: Map<string, { seq: number; id: string }>,
): Broken | undefined {
  const id = r.requestId;
  if (id === undefined) return undefined;
  const s = stored.get(id);
  if (r.breakGlass === 'accepted') {
    if (s?.revoked !== undefined)
      return replayed(
        r,
        `break-glass request ${id} is stored after record ${s.revoked} revoked it`,
      );
    if (s?.accepted !== undefined)
      return replayed(r, `break-glass request ${id} was already stored by record ${s.accepted}`);
    stored.set(id, { ...s, accepted: r.seq });
    return undefined;
  }
  if (r.breakGlass === 'revoked') {
    if (s?.revoked !== undefined)
      return replayed(r, `break-glass request ${id} was already revoked by record ${s.revoked}`);
    stored.set(id, { ...s, revoked: r.seq });
    return undefined;
  }
  if (r.breakGlass !== undefined || r.outcome !== 'override') return undefined;
  if (s?.revoked !== undefined)
    return replayed(
      r,
      `break-glass request ${id} overrode after record ${s.revoked} revoked it: a revoked request authorizes nothing`,
    );
  const before = overrides.get(id);
  if (!before) overrides.set(id, { seq: r.seq, id: r.id });
  if (r.reuse === 'until_expiry') return undefined;
  if (before)
    return replayed(
      r,
      `break-glass request ${id} already overrode record ${before.seq} (${before.id}): a request is single-use`,
    );
  used.set(id, { seq: r.seq, id: r.id });
  return undefined;
}

function checkConsumed(
  table: string,
  used: Map<string, { seq: number; id: string }>,
  rows: Array<{ requestId: string; seq: number }>,
): Broken | undefined {
  const problems: Broken[] = [];
  const indexed = new Map(rows.map((r) => [r.requestId, r.seq]));
  for (const [requestId, { seq, id }] of used) {
    const at = indexed.get(requestId);
    if (at === seq) continue;
    const found = at === undefined ? 'has no row' : `names record ${at}`;
    problems.push(
      mismatch(
        { table, seq, value: requestId, id },
        `the ${table} index ${found} for break-glass request ${requestId}, which this record used (it could override again)`,
      ),
    );
  }
  for (const { requestId, seq } of rows) {
    if (used.get(requestId)?.seq === seq) continue;
    problems.push(
      mismatch(
        { table, seq, value: requestId },
        `the ${table} index names break-glass request ${requestId} for record ${seq}, which no override of it is`,
      ),
    );
  }
  return problems.sort((a, b) => a.seq - b.seq)[0];
}

function mismatch(row: IndexRow & { id?: string }, reason: string): Broken {
  return {
    seq: row.seq,
    ...(row.id !== undefined ? { id: row.id } : {}),
    code: 'LEDGER_INDEX_MISMATCH',
    table: row.table,
    reason,
  };
}
