import { expect } from 'vitest';
import type { CommandIO } from '../src/cli/io.js';
import { run } from '../src/cli/program.js';

export const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

/** Asserts that `fn` throws a GateError with this code (and, optionally, message text). */
export function expectCode(fn: () => unknown, code: string, message?: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected an error with code ${code}`).toBeDefined();
  expect((thrown as { code?: string }).code, String((thrown as Error).message)).toBe(code);
  if (message !== undefined) expect((thrown as Error).message).toMatch(message);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the gate CLI in-process with captured output. */
export async function cli(argv: string[], cwd = process.cwd()): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = { cwd, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}
