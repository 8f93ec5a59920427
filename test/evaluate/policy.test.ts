import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildWasmBundle } from '../../src/evaluate/opa-cli.js';
import { readWasmBundle } from '../../src/evaluate/bundle.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../../src/evaluate/policy.js';
import { FIXTURES } from '../helpers.js';

/**
 * The WebAssembly adapter over small policies compiled by the real opa: every way a policy can
 * fail to answer becomes a coded error, which the gate turns into "could not decide".
 */
const POLICIES = path.join(FIXTURES, 'policies');
const tmp = mkdtempSync(path.join(tmpdir(), 'gate-policy-'));

async function expectRejects(
  p: Promise<unknown> | (() => unknown),
  code: string,
  message?: RegExp,
) {
  let thrown: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    thrown = err;
  }
  expect((thrown as { code?: string })?.code, String(thrown)).toBe(code);
  if (message) expect((thrown as Error).message).toMatch(message);
}

describe('a compiled policy', () => {
  let ok: CompiledPolicy;
  beforeAll(async () => {
    ok = await loadCompiledPolicy(path.join(POLICIES, 'ok'));
  });

  it('evaluates to allow', () => {
    expect(ok.evaluate({ deny: false })).toEqual({
      allow: true,
      violations: [],
      warnings: [],
      rules: ['test.flag'],
    });
  });

  it('evaluates to deny with the violation', () => {
    const r = ok.evaluate({ deny: true });
    expect(r.allow).toBe(false);
    expect(r.violations.map((v) => v.id)).toEqual(['test.flag']);
  });

  it('is loaded once and evaluated many times with the same answers', () => {
    for (let i = 0; i < 200; i++)
      expect(ok.evaluate({ deny: i % 2 === 0 }).allow).toBe(i % 2 !== 0);
  });

  it('has a stable digest over its wasm and data', async () => {
    const again = await loadCompiledPolicy(path.join(POLICIES, 'ok'));
    expect(again.digest).toBe(ok.digest);
    const other = await loadCompiledPolicy(path.join(POLICIES, 'ok'), {
      gate: { config: { x: 1 } },
    });
    expect(other.digest).not.toBe(ok.digest);
  });

  it('loads the same policy from an opa bundle and from a bare policy.wasm', async () => {
    const tgz = await buildWasmBundle(path.join(POLICIES, 'ok'));
    const bundleFile = path.join(tmp, 'ok.tar.gz');
    writeFileSync(bundleFile, tgz);
    const fromBundle = await loadCompiledPolicy(bundleFile);
    const wasmFile = path.join(tmp, 'policy.wasm');
    writeFileSync(wasmFile, readWasmBundle(tgz).wasm);
    const fromWasm = await loadCompiledPolicy(wasmFile);
    for (const p of [fromBundle, fromWasm]) expect(p.evaluate({ deny: true }).allow).toBe(false);
  });
});

describe('when a policy cannot answer', () => {
  it('an undefined decision is POLICY_UNDEFINED', async () => {
    const p = await loadCompiledPolicy(path.join(POLICIES, 'undefined'));
    expect(p.evaluate({ ok: true }).allow).toBe(true);
    await expectRejects(() => p.evaluate({ ok: false }), 'POLICY_UNDEFINED');
  });

  it('a runtime conflict is POLICY_EVAL_FAILED', async () => {
    const p = await loadCompiledPolicy(path.join(POLICIES, 'conflict'));
    await expectRejects(() => p.evaluate({ a: true, b: true }), 'POLICY_EVAL_FAILED', /conflict/);
  });

  it('an output that fails the schema is POLICY_OUTPUT_INVALID', async () => {
    const p = await loadCompiledPolicy(path.join(POLICIES, 'bad-output'));
    await expectRejects(() => p.evaluate({}), 'POLICY_OUTPUT_INVALID');
  });

  it('an allow that carries violations is POLICY_OUTPUT_INVALID', async () => {
    const p = await loadCompiledPolicy(path.join(POLICIES, 'allow-with-violations'));
    await expectRejects(() => p.evaluate({}), 'POLICY_OUTPUT_INVALID', /allows with 1 violations/);
  });

  it('a builtin the wasm runtime lacks is refused at load', async () => {
    await expectRejects(
      loadCompiledPolicy(path.join(POLICIES, 'host-builtin')),
      'POLICY_LOAD_FAILED',
      /http\.send/,
    );
  });

  it('rego that does not compile is POLICY_BUILD_FAILED with opa’s reason', async () => {
    const dir = mkdtempSync(path.join(tmp, 'broken-'));
    writeFileSync(path.join(dir, 'p.rego'), 'package gate\n\ndecision := {\n');
    await expectRejects(loadCompiledPolicy(dir), 'POLICY_BUILD_FAILED', /opa build failed/);
  });

  it('a bundle without the gate entrypoint is refused', async () => {
    const dir = mkdtempSync(path.join(tmp, 'other-'));
    writeFileSync(path.join(dir, 'p.rego'), 'package gate\n\nother := 1\n');
    await expectRejects(loadCompiledPolicy(dir), 'POLICY_BUILD_FAILED');
  });

  it('a file that is neither wasm nor a bundle is refused', async () => {
    const file = path.join(tmp, 'junk.bin');
    writeFileSync(file, 'junk');
    await expectRejects(loadCompiledPolicy(file), 'POLICY_LOAD_FAILED', /not a gzip/);
    writeFileSync(file, gzipSync(Buffer.from('not a tar')));
    await expectRejects(loadCompiledPolicy(file), 'POLICY_LOAD_FAILED');
  });

  it('a missing path is refused', async () => {
    await expectRejects(
      loadCompiledPolicy(path.join(tmp, 'nope')),
      'POLICY_LOAD_FAILED',
      /does not exist/,
    );
  });
});
