import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findOpa } from '../../src/evaluate/opa-cli.js';
import { packageRoot } from '../../src/util/paths.js';

/**
 * policies/ is laid out as OPA users expect: the plain commands, with no flags, work on a
 * checkout (as Regal and the editor plugins run them). A JSON file dropped into the policy tree
 * (example inputs, say) is loaded as data and breaks them all, so the example inputs live in
 * examples/policy-inputs.
 */
const opa = findOpa();
const exec = promisify(execFile);
const plain = (...args: string[]) =>
  exec(opa, args, { cwd: packageRoot, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });

function files(dir: string): string[] {
  return readdirSync(path.join(packageRoot, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(packageRoot, path.join(e.parentPath, e.name)))
    .sort();
}

describe('policies/ with the plain opa commands', () => {
  it('holds only Rego and the one data document', () => {
    const other = files('policies').filter((f) => !f.endsWith('.rego'));
    expect(other).toEqual([path.join('policies', 'data.json')]);
  });

  it('opa check policies/ and opa check --strict policies/ pass', async () => {
    await expect(plain('check', 'policies/')).resolves.toMatchObject({ stderr: '' });
    await expect(plain('check', '--strict', 'policies/')).resolves.toMatchObject({ stderr: '' });
  });

  it('opa test policies/ -v passes every test', async () => {
    const { stdout } = await plain('test', 'policies/', '-v');
    const [, passed, total] = /PASS: (\d+)\/(\d+)/.exec(stdout) ?? [];
    expect(Number(total)).toBeGreaterThanOrEqual(100);
    expect(passed).toBe(total);
  });

  it('opa fmt -l policies/ lists nothing', async () => {
    await expect(plain('fmt', '-l', 'policies/')).resolves.toMatchObject({ stdout: '' });
  });

  it('opa build policies/ builds a bundle, and with the tests left out a WebAssembly one', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'gate-opa-layout-'));
    const rego = path.join(out, 'rego.tar.gz');
    const wasm = path.join(out, 'bundle.tar.gz');
    await expect(plain('build', '-o', rego, 'policies/')).resolves.toMatchObject({ stderr: '' });
    const wasmBuild = ['-t', 'wasm', '-e', 'gate/decision', '--ignore', '*_test.rego'];
    await expect(plain('build', ...wasmBuild, '-o', wasm, 'policies/')).resolves.toMatchObject({
      stderr: '',
    });
  });

  it.each([
    ['allow-production.json', true, []],
    ['deny-missing-tests.json', false, ['tests.required_suites']],
  ])('opa eval decides examples/policy-inputs/%s as documented', async (name, allow, ids) => {
    const input = `examples/policy-inputs/${name}`;
    const { stdout } = await plain('eval', '-d', 'policies/', '-i', input, 'data.gate.decision');
    const value = (JSON.parse(stdout) as { result: Array<{ expressions: [{ value: unknown }] }> })
      .result[0]!.expressions[0].value as { allow: boolean; violations: Array<{ id: string }> };
    expect(value.allow).toBe(allow);
    expect(value.violations.map((v) => v.id)).toEqual(ids);
  });
});
