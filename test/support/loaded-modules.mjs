/**
 * Preloaded (`node --import`) by test/cli/cold-start.test.ts: writes every module the process
 * loads into the file GATE_LOADED_MODULES names, one file: URL a line, so a test can tell what a
 * command loaded. ECMAScript modules are seen by a resolve hook (module.register: Node 20.6 and
 * later, hooks on their own thread, which appends each line as it resolves); CommonJS modules,
 * required or imported, are in require's cache, written when the process exits, with Node's
 * own internal modules (process.moduleLoadList). Nothing is changed: each resolution is passed on
 * as it is.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const out = process.env.GATE_LOADED_MODULES;
if (!out) throw new Error('loaded-modules: GATE_LOADED_MODULES names no file');

register('./loaded-modules-hooks.mjs', import.meta.url, { data: { out } });

const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const lines = Object.keys(cache).map((file) => `${pathToFileURL(file).href}\n`);
  // Node's own modules loaded on first use (its fetch implementation, say), as node-internal:NAME
  const internal = (process.moduleLoadList ?? []).filter((m) => m.startsWith('NativeModule '));
  lines.push(...internal.map((m) => `node-internal:${m.slice('NativeModule '.length)}\n`));
  appendFileSync(out, lines.join(''));
});
