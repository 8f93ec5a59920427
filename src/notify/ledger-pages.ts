import type { LedgerQuery } from '../audit/ledger.js';
import type { LedgerRecord } from '../audit/record.js';

/** Only what reading pages needs of a ledger: its query (SQLite, PostgreSQL). */
export type QueryableLedger = { query(q: LedgerQuery): Promise<LedgerRecord[]> };

const PAGE = 1000;

/**
 * Every record the query matches, newest first, a page at a time: a ledger caps a page, and its
 * records are ordered by position, so the next page ends with the oldest millisecond seen again
 * (its other records may be there); what was seen is not given twice.
 */
export async function* ledgerPages(
  ledger: QueryableLedger,
  q: Omit<LedgerQuery, 'limit'>,
): AsyncGenerator<LedgerRecord> {
  const seen = new Set<string>();
  let to = q.to;
  for (;;) {
    const page = await ledger.query({ ...q, ...(to ? { to } : {}), limit: PAGE });
    let fresh = 0;
    for (const r of page) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      fresh++;
      yield r;
    }
    if (page.length < PAGE || fresh === 0) return;
    to = new Date(Date.parse(page[page.length - 1]!.time) + 1).toISOString();
  }
}
