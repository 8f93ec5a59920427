import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { FIXTURES } from '../helpers.js';

/**
 * The CLI's cold start (issue 11): each command loads what it needs when it runs, not what every
 * other command needs. The built binary runs under a preload that lists every module it loads
 * (test/support/loaded-modules.mjs); the lists, not times, are checked, as times are noisy.
 * `make bench` measures the times.
 */
const BIN = packagePath('dist', 'cli', 'main.js');
const PRELOAD = packagePath('test', 'support', 'loaded-modules.mjs');
const CASES = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
const DSSE = path.join(CASES, 'happy-path-intoto-in-dsse-v3', 'bundle.sigstore.json');
const A_TXT = path.join(CASES, 'a.txt');
const A_TXT_SHA256 = 'a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf';
const ID =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

/** Every package of one command or another; each command below may load only some. */
const HEAVY = {
  server: ['fastify', 'prom-client'],
  ledgers: ['better-sqlite3', 'pg'],
  policy: ['@open-policy-agent/opa-wasm'],
  verifier: ['@sigstore/verify', '@sigstore/core', '@sigstore/bundle', '@sigstore/tuf'],
  // Ajv itself, not the few runtime helpers the precompiled validators require
  schemaCompiler: ['ajv/dist/core.js', 'ajv/dist/2020.js', 'ajv-formats/dist/index.js'],
  remote: ['undici', 'snappy', '@chainsafe/fast-crc32c'],
  config: ['yaml'],
};
const heavy = (...groups: (keyof typeof HEAVY)[]) => groups.flatMap((g) => HEAVY[g]);

let dir: string;

/** Runs the built CLI under the preload: its exit code and the modules it loaded. */
async function loaded(
  args: string[],
): Promise<{ code: number; stdout: string; modules: string[] }> {
  const list = path.join(mkdtempSync(path.join(dir, 'run-')), 'modules.txt');
  let code = 0;
  let stdout = '';
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, ['--import', PRELOAD, BIN, ...args], {
      cwd: dir,
      env: { ...process.env, GATE_LOADED_MODULES: list },
    }));
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    ({ code } = e as { code: number });
    stdout = e.stdout ?? '';
  }
  const modules = [...new Set(readFileSync(list, 'utf8').split('\n').filter(Boolean))];
  return { code, stdout, modules };
}

/** The packages (and package paths) of `names` that appear among the modules. */
function amongModules(modules: string[], names: string[]): string[] {
  return names.filter((name) => {
    const needle = name.includes('/dist/') ? `/node_modules/${name}` : `/node_modules/${name}/`;
    return modules.some((m) => m.includes(needle));
  });
}

/** Node's fetch implementation, loaded on the first look at fetch, Response, Headers... */
const nodeFetch = (modules: string[]) =>
  modules.filter((m) => m.startsWith('node-internal:internal/deps/undici'));

/** The gate's own modules under these folders of dist/ (or these files). */
function ownModules(modules: string[], prefixes: string[]): string[] {
  const dist = new URL(`file://${packagePath('dist')}/`).href;
  return modules
    .filter((m) => m.startsWith(dist))
    .map((m) => m.slice(dist.length))
    .filter((m) => prefixes.some((p) => m.startsWith(p)));
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `make build` first');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-cold-start-'));
});

describe('what a command loads', () => {
  it('gate --help: commander and the command line, nothing of any command', async () => {
    const res = await loaded(['--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Usage: gate');
    // the preload sees modules at all (commander is CommonJS, the CLI is ESM, fs is Node's)
    expect(res.modules).toContain('node-internal:fs');
    expect(amongModules(res.modules, ['commander'])).toEqual(['commander']);
    expect(ownModules(res.modules, ['cli/program.js'])).toEqual(['cli/program.js']);
    expect(
      amongModules(res.modules, heavy(...(Object.keys(HEAVY) as (keyof typeof HEAVY)[]))),
    ).toEqual([]);
    expect(
      ownModules(res.modules, [
        'cli/commands/',
        'gate.js',
        'index.js',
        'api/',
        'server/',
        'audit/',
        'evaluate/',
        'verify/',
        'collect/',
        'util/schemas.js',
      ]),
    ).toEqual([]);
    expect(nodeFetch(res.modules)).toEqual([]);
  });

  it('gate verify-bundle: the verifier, with precompiled validators; no gate, ledger or policy', async () => {
    const args = ['--certificate-identity', ID, '--certificate-oidc-issuer', ISSUER];
    const res = await loaded(['verify-bundle', '--bundle', DSSE, ...args, A_TXT]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`verified: ${ID} (issuer ${ISSUER})\n`);
    expect(amongModules(res.modules, ['@sigstore/verify'])).toEqual(['@sigstore/verify']);
    // the statement was checked by the validator compiled when the package was built
    expect(ownModules(res.modules, ['util/schema-validators/']).sort()).toEqual([
      'util/schema-validators/in-toto-statement-v1.schema.cjs',
      'util/schema-validators/index.cjs',
    ]);
    expect(
      amongModules(
        res.modules,
        heavy('server', 'ledgers', 'policy', 'schemaCompiler', 'remote', 'config'),
      ),
    ).toEqual([]);
    expect(
      ownModules(res.modules, [
        'gate.js',
        'index.js',
        'server/',
        'audit/',
        'evaluate/',
        'collect/',
        'notify/',
      ]),
    ).toEqual([]);
    expect(nodeFetch(res.modules)).toEqual([]);
  });

  it('gate check on a bundle file: the gate, its ledger and policy; no server, no remote source', async () => {
    const res = await loaded([
      'check',
      '--subject',
      `sha256:${A_TXT_SHA256}`,
      '--env',
      'dev',
      '--bundle',
      DSSE,
      '--policy',
      path.join(FIXTURES, 'policies', 'requires-provenance'),
    ]);
    expect(res.stdout).toMatch(/^(ALLOW|DENY): /);
    expect(amongModules(res.modules, ['better-sqlite3', '@open-policy-agent/opa-wasm'])).toEqual([
      'better-sqlite3',
      '@open-policy-agent/opa-wasm',
    ]);
    // (yaml is not among them: the policy engine's yaml builtins need it)
    expect(
      amongModules(res.modules, [...heavy('server', 'schemaCompiler', 'remote'), 'pg']),
    ).toEqual([]);
    expect(ownModules(res.modules, ['server/', 'index.js'])).toEqual([]);
    // the policy is instantiated without opa-wasm's look at the Response global
    expect(nodeFetch(res.modules)).toEqual([]);
  });
});
