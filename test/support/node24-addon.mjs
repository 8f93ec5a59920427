/**
 * Preloaded (`node --import`) by test/support/node24.sh when the test suite runs on a second
 * Node version. better-sqlite3's native addon is built for one Node ABI: node_modules holds the
 * build for the Node that installed it, and a second Node needs its own build, which node24.sh
 * makes from the same package's sources into .tools/. This hook loads that build wherever
 * node_modules' own would be loaded (better-sqlite3 finds it through `bindings`), so the same
 * JavaScript runs against the same SQLite on the other Node. Everything else is untouched.
 *
 * GATE_BETTER_SQLITE3_ADDON: the addon built for the running Node.
 */
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';

const addon = process.env.GATE_BETTER_SQLITE3_ADDON;
if (!addon || !existsSync(addon)) {
  throw new Error(`node24-addon: GATE_BETTER_SQLITE3_ADDON names no file (${addon ?? 'unset'})`);
}
const root = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const installed = path.join(root, 'node_modules', 'better-sqlite3', 'build', 'Release');
const replacement = pathToFileURL(path.resolve(addon)).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (!resolved.url.startsWith('file:')) return resolved;
    const file = fileURLToPath(resolved.url);
    if (path.dirname(file) === installed && path.basename(file) === 'better_sqlite3.node') {
      return { ...resolved, url: replacement };
    }
    return resolved;
  },
});
