import fc from 'fast-check';
import { expect } from 'vitest';
import { GateError } from '../../src/errors.js';
import { reportFuzz } from './report.js';

/**
 * The fuzzing budget: runs per property. `make test` runs the small default (all of test/fuzz in
 * well under a minute on two cores); `make fuzz` sets GATE_FUZZ_RUNS for a long run. Expensive
 * properties (a whole decision, an HTTP request) take a fraction of it.
 */
export const RUNS = Number(process.env.GATE_FUZZ_RUNS ?? 200);

/** `weight` of the budget, at least one run. */
export function runs(weight = 1): number {
  return Math.max(1, Math.round(RUNS * weight));
}

/** vitest's timeout for a test of `n` runs at about `msPerRun` each, with room to spare. */
export function timeoutFor(n: number, msPerRun: number): number {
  return Math.max(60_000, Math.ceil(n * msPerRun * 4));
}

type Params<Ts> = fc.Parameters<Ts>;

/**
 * Runs a property with fc.check, reports its counts (report.ts), then fails the test with
 * fast-check's own report (seed, path and the shrunk counterexample) when it found one.
 */
export async function checkProperty<Ts>(
  name: string,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  params: Params<Ts> = {},
): Promise<void> {
  const details = await fc.check(property as fc.IRawProperty<Ts>, { numRuns: RUNS, ...params });
  reportFuzz(name, details.numRuns, details.failed ? 1 : 0, details.seed);
  if (details.failed) {
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : '';
    throw new Error(`${fc.defaultReportMessage(details) ?? `${name} failed`}\n${why}`, {
      cause: details.errorInstance,
    });
  }
  expect(details.numRuns).toBeGreaterThan(0);
}

/**
 * Calls `fn`: its result, or the code of the GateError it threw. Anything else thrown (a
 * TypeError, a RangeError, a string) fails the property, as does a message over several lines.
 */
export function coded<T>(fn: () => T): { ok: true; value: T } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return codeOf(err);
  }
}

export async function codedAsync<T>(
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return codeOf(err);
  }
}

function codeOf(err: unknown): { ok: false; code: string } {
  if (!(err instanceof GateError)) {
    throw new Error(`not a coded GateError: ${String(err)}`, { cause: err });
  }
  expect(typeof err.code).toBe('string');
  expect(err.code).toMatch(/^[A-Z0-9_]+$/);
  expect(err.message, err.message).not.toMatch(/\n/);
  return { ok: false, code: err.code };
}
