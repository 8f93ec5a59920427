import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Decision } from '../decision.js';
import { GateError } from '../errors.js';
import type { LedgerQuery } from './ledger.js';
import { indexedFields } from './record.js';

/** The largest `limit` a query over JSON Lines may ask for (the newest matches are held in memory). */
export const MAX_JSONL_LIMIT = 1000;

/** One line of the JSON Lines ledger (jsonl.ts), as read. */
export type JsonlLine =
  | { line: number; record: { decision: Decision; input: unknown } }
  /** a line that does not parse: a torn write, which holds no acknowledged decision */
  | { line: number; torn: true }
  /** a line that parses but is not a record: written by something other than the gate */
  | { line: number; foreign: true };

/**
 * The ledger's lines in order, streamed, so the file's size costs time, not memory. A file that
 * does not exist yet holds no decisions; one that cannot be read is LEDGER_UNAVAILABLE.
 */
export async function* jsonlLines(file: string): AsyncGenerator<JsonlLine> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      if (text.trim() !== '') yield parseLine(text, n);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new GateError(
      'LEDGER_UNAVAILABLE',
      `cannot read the ledger ${file}: ${(err as Error).message.toLowerCase()}`,
      { cause: err },
    );
  } finally {
    lines.close();
  }
}

function parseLine(text: string, line: number): JsonlLine {
  let parsed: { decision?: Decision; input?: unknown } | null;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return { line, torn: true };
  }
  const d = parsed?.decision;
  const ok = d && typeof d === 'object' && typeof d.id === 'string' && Array.isArray(d.subjects);
  return ok ? { line, record: { decision: d, input: parsed?.input } } : { line, foreign: true };
}

/**
 * The decisions matching `q`, newest first: only the newest `limit` matches are kept. A line that
 * is not a record (a torn last write) is skipped and counted.
 */
export async function readDecisions(
  file: string,
  q: LedgerQuery,
): Promise<{ decisions: Decision[]; skipped: number }> {
  const limit = q.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_JSONL_LIMIT)
    throw new GateError(
      'USAGE_ERROR',
      `limit must be between 1 and ${MAX_JSONL_LIMIT}, got ${limit}`,
    );
  let kept: Decision[] = [];
  let skipped = 0;
  for await (const l of jsonlLines(file)) {
    if (!('record' in l)) skipped++;
    else if (matches(l.record.decision, q)) kept.push(l.record.decision);
    // Trim in batches: splicing on every push would make a long ledger quadratic.
    if (kept.length >= 2 * limit) kept = kept.slice(-limit);
  }
  return { decisions: kept.slice(-limit).reverse(), skipped };
}

/** The record of decision `id`, when the ledger holds it (the last one, should it appear twice). */
export async function findRecord(
  file: string,
  id: string,
): Promise<{ decision: Decision; input: unknown } | undefined> {
  let found: { decision: Decision; input: unknown } | undefined;
  for await (const l of jsonlLines(file))
    if ('record' in l && l.record.decision.id === id) found = l.record;
  return found;
}

/** The same filters as the chained backends' indexes, over the same derived fields (record.ts). */
function matches(d: Decision, q: LedgerQuery): boolean {
  if (q.environment !== undefined && d.environment !== q.environment) return false;
  if (q.outcome !== undefined && d.outcome !== q.outcome) return false;
  const time = Date.parse(d.time);
  if (q.from !== undefined && !(time >= Date.parse(q.from))) return false;
  if (q.to !== undefined && !(time < Date.parse(q.to))) return false;
  if (q.subject === undefined && q.requester === undefined && q.rule === undefined) return true;
  const f = indexedFields(d);
  if (q.subject !== undefined && !f.subjects.includes(q.subject)) return false;
  if (q.requester !== undefined && f.requester !== q.requester) return false;
  return q.rule === undefined || f.rules.includes(q.rule);
}
