#!/usr/bin/env node
import module from 'node:module';

// Node's on-disk cache of compiled JavaScript (Node 22.1+; Node 20 has none, and runs as before):
// a second `gate` start skips parsing and compiling the modules it loads. The cache lives where
// NODE_COMPILE_CACHE names, else in Node's default, node-compile-cache under the OS temporary
// directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off. It is a cache: any failure is ignored.
// It is enabled before anything else is imported, so it covers every module of the CLI.
try {
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // no cache, same results
}

// The only place that exits the process. Anything unexpected is one line, never a stack trace.
Promise.all([import('./io.js'), import('./program.js')])
  .then(([{ processIO }, { run }]) => run(process.argv.slice(2), processIO))
  .then(
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
