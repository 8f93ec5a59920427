#!/usr/bin/env node
import { processIO } from './io.js';
import { run } from './program.js';

// The only place that exits the process. Anything unexpected is one line, never a stack trace.
run(process.argv.slice(2), processIO).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `gate: INTERNAL_ERROR: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 2;
  },
);
