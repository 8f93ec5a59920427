import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { opaEval } from '../../src/evaluate/opa-cli.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../../src/evaluate/policy.js';
import { packagePath } from '../../src/util/paths.js';

/**
 * The same inputs through OPA's own Go evaluator (`opa eval` on the Rego sources) and through
 * the WebAssembly the gate runs: the answers must be identical, or the compiled policy is not
 * the policy its authors tested.
 */
const POLICIES = packagePath('policies');
const EXAMPLES = packagePath('examples', 'policy-inputs');
const inputs = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.json') && f !== 'expected.json')
  .sort();
const expected = JSON.parse(readFileSync(path.join(EXAMPLES, 'expected.json'), 'utf8')) as Record<
  string,
  { allow: boolean; violations: string[] }
>;
const tmp = mkdtempSync(path.join(tmpdir(), 'gate-diff-'));

let wasm: CompiledPolicy;
beforeAll(async () => {
  wasm = await loadCompiledPolicy(POLICIES);
}, 180_000);

async function both(input: unknown, name: string) {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify(input));
  const fromGo = await opaEval(POLICIES, file);
  const fromWasm = wasm.evaluate(input);
  return { fromGo, fromWasm };
}

describe('default policy: opa eval and wasm agree', () => {
  it('has examples to compare', () => expect(inputs.length).toBeGreaterThanOrEqual(6));

  for (const name of inputs) {
    it(`on ${name}, with the documented outcome`, async () => {
      const input = JSON.parse(readFileSync(path.join(EXAMPLES, name), 'utf8'));
      const { fromGo, fromWasm } = await both(input, name);
      expect(fromWasm).toEqual(fromGo);
      const want = expected[name];
      expect(want, `expected.json has no entry for ${name}`).toBeDefined();
      expect(fromWasm.allow).toBe(want!.allow);
      expect(fromWasm.violations.map((v) => v.id).sort()).toEqual([...want!.violations].sort());
    });
  }

  it('on generated variations of the examples', async () => {
    const bases = inputs.map((f) => JSON.parse(readFileSync(path.join(EXAMPLES, f), 'utf8')));
    const variation = fc.record({
      base: fc.nat(bases.length - 1),
      env: fc.constantFrom('dev', 'staging', 'production', 'hotfix', 'qa'),
      drop: fc.nat(8),
      days: fc.integer({ min: -400, max: 400 }),
      kinds: fc.subarray(['metadata', 'timestamp', 'keys', 'content']),
    });
    const samples = fc.sample(variation, { numRuns: 25, seed: 2026 });
    for (const [i, v] of samples.entries()) {
      const input = structuredClone(bases[v.base]);
      input.environment = v.env;
      input.attestations.splice(v.drop, 1);
      input.effectiveTime = new Date(
        Date.parse(input.effectiveTime) + v.days * 86_400_000,
      ).toISOString();
      input.context = { ...input.context, changeKinds: v.kinds };
      const { fromGo, fromWasm } = await both(input, `variation-${i}.json`);
      expect(fromWasm, `variation ${i}: ${JSON.stringify(v)}`).toEqual(fromGo);
    }
  }, 180_000);
});
