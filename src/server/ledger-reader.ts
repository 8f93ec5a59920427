import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Decision, Outcome } from '../decision.js';
import { GateError } from '../errors.js';
import type { ArtifactDigest } from '../subject.js';

export interface DecisionFilter {
  subject?: ArtifactDigest;
  environment?: string;
  outcome?: Outcome;
}

export const MAX_AUDIT_LIMIT = 1000;

/**
 * Reads the JSON Lines ledger (src/audit/jsonl.ts: one `{decision, input}` per line, oldest
 * first) as a stream, so the file's size costs time, not memory: only the newest `limit`
 * matches are kept. Newest first. A file that does not exist yet holds no decisions; a line that
 * does not parse (a torn last write) is skipped and counted.
 */
export async function readDecisions(
  file: string,
  filter: DecisionFilter,
  limit: number,
): Promise<{ decisions: Decision[]; skipped: number }> {
  let kept: Decision[] = [];
  let skipped = 0;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const decision = parseRecord(line);
      if (decision === undefined) skipped++;
      else if (matches(decision, filter)) kept.push(decision);
      // Trim in batches: splicing on every push would make a long ledger quadratic.
      if (kept.length >= 2 * limit) kept = kept.slice(-limit);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { decisions: [], skipped: 0 };
    throw new GateError(
      'LEDGER_UNAVAILABLE',
      `cannot read the ledger ${file}: ${(err as Error).message.toLowerCase()}`,
      {
        cause: err,
      },
    );
  } finally {
    lines.close();
  }
  return { decisions: kept.slice(-limit).reverse(), skipped };
}

function parseRecord(line: string): Decision | undefined {
  try {
    const record = JSON.parse(line) as { decision?: Decision };
    const d = record?.decision;
    return d && typeof d === 'object' && Array.isArray(d.subjects) ? d : undefined;
  } catch {
    return undefined;
  }
}

function matches(d: Decision, f: DecisionFilter): boolean {
  if (f.environment !== undefined && d.environment !== f.environment) return false;
  if (f.outcome !== undefined && d.outcome !== f.outcome) return false;
  const s = f.subject;
  return s === undefined || d.subjects.some((x) => x.digest?.[s.algorithm] === s.hex);
}
