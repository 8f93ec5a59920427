import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

/**
 * The attack corpus's record (issue 12, item 1): with GATE_RELIABILITY_DIR set, every attack test
 * appends one JSON line {name, advisory, outcome, code} to $GATE_RELIABILITY_DIR/attacks.jsonl, so
 * a report can list each attack and how the gate ended it; without it, nothing is written.
 */
export function reportAttack(
  name: string,
  advisory: string | undefined,
  outcome: string,
  code: string | undefined,
): void {
  const dir = process.env.GATE_RELIABILITY_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const line = JSON.stringify({ name, advisory: advisory ?? null, outcome, code: code ?? null });
  appendFileSync(path.join(dir, 'attacks.jsonl'), `${line}\n`);
}

/** What an attack ended in: a thrown coded error ('error') or the value it returned. */
export interface Ended<T> {
  outcome: 'error' | 'returned';
  code: string | undefined;
  value?: T;
  error?: unknown;
}

/** Runs `fn` and says how it ended, without letting an uncoded crash pass as a code. */
export async function ending<T>(fn: () => T | Promise<T>): Promise<Ended<T>> {
  try {
    return { outcome: 'returned', code: undefined, value: await fn() };
  } catch (error) {
    return { outcome: 'error', code: (error as { code?: string }).code, error };
  }
}

/**
 * The attack must end in a thrown error with exactly this code (a GateError / VerifyError /
 * PolicyError): recorded, then asserted. Returns the error for further checks.
 */
export async function expectRefused(
  name: string,
  advisory: string | undefined,
  fn: () => unknown,
  code: string,
  message?: RegExp,
): Promise<Error> {
  const end = await ending(fn);
  reportAttack(name, advisory, end.outcome === 'error' ? 'error' : 'accepted', end.code);
  expect(end.outcome, `${name}: expected ${code}, it was accepted`).toBe('error');
  expect(end.code, String((end.error as Error | undefined)?.message)).toBe(code);
  if (message) expect((end.error as Error).message).toMatch(message);
  return end.error as Error;
}

/** A decision-like answer: the gate's Decision, an admission response, a break-glass check. */
export interface Answered {
  outcome: string;
  error?: { code: string };
}

/**
 * The attack must end in this decision outcome ('deny' or 'error', never 'allow') and, when
 * given, this code (the decision's error code or the code of the rejection the test names).
 */
export function expectDecision(
  name: string,
  advisory: string | undefined,
  d: Answered,
  outcome: 'deny' | 'error',
  code?: string,
  observedCode: string | undefined = d.error?.code,
): void {
  reportAttack(name, advisory, d.outcome, observedCode);
  expect(d.outcome, `${name}: ${JSON.stringify(d.error ?? '')}`).toBe(outcome);
  expect(d.outcome).not.toBe('allow');
  if (code !== undefined) expect(observedCode).toBe(code);
}
