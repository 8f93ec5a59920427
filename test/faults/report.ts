import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * One line per fault for the reliability report: when GATE_RELIABILITY_DIR is set, appends
 * `{name, outcome, code, ms}` to $GATE_RELIABILITY_DIR/faults.jsonl; otherwise does nothing.
 * `outcome` is what the gate answered (allow, deny, error, override, or how a process ended),
 * `code` the error code it gave, `ms` the time from asking to the answer.
 */
export function reportFault(
  name: string,
  outcome: string,
  code: string | undefined,
  ms: number,
): void {
  const dir = process.env.GATE_RELIABILITY_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const line = JSON.stringify({ name, outcome, code, ms: Math.round(ms) });
  appendFileSync(path.join(dir, 'faults.jsonl'), `${line}\n`);
}
