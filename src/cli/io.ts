/** What a command may touch: injected so commands are testable without a child process. */
export interface CommandIO {
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIO: CommandIO = {
  cwd: process.cwd(),
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
