import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * One line per property run to `$GATE_RELIABILITY_DIR/fuzz.jsonl` (the reliability report reads
 * it): how many inputs were tried and how many failed. Nothing without the variable.
 */
export function reportFuzz(property: string, runs: number, failures: number, seed?: number): void {
  const dir = process.env.GATE_RELIABILITY_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const line = { property, runs, failures, ...(seed !== undefined ? { seed } : {}) };
  appendFileSync(path.join(dir, 'fuzz.jsonl'), `${JSON.stringify(line)}\n`);
}
