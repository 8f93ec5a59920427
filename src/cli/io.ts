import type { Environment } from '../config.js';
import { isGateError, type GateErrorCode } from '../errors.js';

/** What a command may touch: injected so commands are testable without a child process. */
export interface CommandIO {
  cwd: string;
  /** where configuration secrets are read from (default: this process's environment) */
  env?: Environment;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIO: CommandIO = {
  cwd: process.cwd(),
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** Exit statuses shared by every command. */
export const EXIT = {
  ok: 0,
  /** verification failed, or the gate denied */
  failed: 1,
  /** could not decide: bad usage, bad config, unreadable input, unreachable source */
  error: 2,
} as const;

/** Codes that mean the command could not run at all (exit 2) rather than failed a check. */
const CANNOT_RUN: ReadonlySet<GateErrorCode> = new Set([
  'USAGE_ERROR',
  'INPUT_UNREADABLE',
  'INPUT_TOO_LARGE',
  'TRUST_ROOT_INVALID',
  'TRUST_ROOT_UNAVAILABLE',
  'IDENTITY_RULE_INVALID',
]);

/** One line on stderr with the code; never a stack trace. */
export function reportError(err: unknown, io: CommandIO): number {
  if (isGateError(err)) {
    io.stderr(`gate: ${err.code}: ${err.message}\n`);
    return CANNOT_RUN.has(err.code) ? EXIT.error : EXIT.failed;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr(`gate: INTERNAL_ERROR: ${message}\n`);
  return EXIT.error;
}
