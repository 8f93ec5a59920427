import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { opaEval } from '../../src/evaluate/opa-cli.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../../src/evaluate/policy.js';
import type { PolicyAttestation, PolicyInput } from '../../src/evaluate/input.js';
import { packagePath } from '../../src/util/paths.js';

/**
 * Issue 8's attacks on the default library (items 4, 8 and 10), run through the WebAssembly the
 * gate evaluates and through `opa eval`: what the caller writes in the unsigned context, how a
 * test-result predicate names its suites, and how old a staging summary may be. Each input is an
 * example of examples/policy-inputs with one thing changed, as an attacker or a real pipeline would.
 */
const POLICIES = packagePath('policies');
const tmp = mkdtempSync(path.join(tmpdir(), 'gate-relax-'));
const TEST_RESULT = 'https://in-toto.io/attestation/test-result/v0.1';
const CHANGE = 'https://gate.dev/attestation/change/v1';
const VSA = 'https://slsa.dev/verification_summary/v1';

const example = (name: string): PolicyInput =>
  JSON.parse(readFileSync(packagePath('examples', 'policy-inputs', name), 'utf8')) as PolicyInput;
const pred = (a: PolicyAttestation) => a.predicate as Record<string, unknown>;
const ofType = (i: PolicyInput, type: string) =>
  i.attestations.filter((a) => a.predicateType === type);
const without = (i: PolicyInput, type: string) =>
  i.attestations.filter((a) => a.predicateType !== type);

let wasm: CompiledPolicy;
beforeAll(async () => {
  wasm = await loadCompiledPolicy(POLICIES);
}, 180_000);

/** The wasm's decision, after checking that opa's own evaluator says exactly the same. */
async function decide(input: PolicyInput, name: string) {
  const file = path.join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(input));
  const fromWasm = wasm.evaluate(input);
  expect(fromWasm).toEqual(await opaEval(POLICIES, file));
  return { ...fromWasm, ids: fromWasm.violations.map((v) => v.id) };
}

describe('the unsigned context cannot relax a rule (item 4)', () => {
  it('a declared metadata change does not waive failed tests and a critical finding', async () => {
    const input = example('deny-critical-vuln.json');
    for (const run of ofType(input, TEST_RESULT)) {
      Object.assign(pred(run), { result: 'FAILED', failedTests: ['unit/total_test.ts > sums'] });
    }
    input.context = { changeKinds: ['metadata'] };
    const d = await decide(input, 'declared-metadata');
    expect(d.allow).toBe(false);
    expect(d.ids).toEqual(expect.arrayContaining(['tests.passed', 'vulnerabilities.severity']));
    expect(d.warnings.map((w) => w.id)).toContain('change.unverified_context');
  });

  it('the routine example without its signed change statement gets every rule', async () => {
    const input = example('routine-metadata.json');
    expect((await decide(input, 'routine-signed')).allow).toBe(true);
    input.attestations = without(input, CHANGE);
    const d = await decide(input, 'routine-unsigned');
    expect(d.ids).toEqual(['tests.present', 'vulnerabilities.present']);
  });

  it('a change statement re-signed by another identity does not count', async () => {
    const input = example('routine-metadata.json');
    const statement = ofType(input, CHANGE)[0]!;
    statement.signer = { ...statement.signer, identity: statement.signer.identity + '.evil' };
    expect((await decide(input, 'routine-untrusted')).allow).toBe(false);
  });

  it('a context ticket alone does not open the hotfix lane', async () => {
    const input = example('hotfix.json');
    input.attestations = without(input, CHANGE);
    const d = await decide(input, 'hotfix-context-ticket');
    expect(d.ids).toEqual(['change.ticket']);
    expect(d.violations[0]!.message).toContain('the unsigned context.ticket "INC-4711"');
  });
});

describe('required suites as the test-result predicate names them (item 8)', () => {
  /** One run of the ci workflow listing the given tests as passed. */
  function ciRun(input: PolicyInput, passedTests: string[]): PolicyInput {
    const [run] = ofType(input, TEST_RESULT);
    Object.assign(pred(run!), {
      configuration: [{ name: '.github/workflows/ci.yml' }],
      passedTests,
    });
    return { ...input, attestations: [...without(input, TEST_RESULT), run!] };
  }

  it('allows a complete run configured by its workflow', async () => {
    const input = ciRun(example('allow-production.json'), ['unit', 'integration']);
    expect((await decide(input, 'suites-complete')).ids).toEqual([]);
  });

  it('denies a run whose configuration names a suite that never ran', async () => {
    const input = example('allow-production.json');
    const runs = ofType(input, TEST_RESULT);
    Object.assign(pred(runs[0]!), {
      configuration: [{ name: 'unit' }, { name: 'integration' }],
    });
    input.attestations = [...without(input, TEST_RESULT), runs[0]!];
    const d = await decide(input, 'suite-never-ran');
    expect(d.ids).toEqual(['tests.required_suites']);
    expect(d.violations[0]!.message).toContain('required test suite integration');
  });
});

describe('a verification summary expires (item 10)', () => {
  function vsaAt(time: string): PolicyInput {
    const input = example('allow-production.json');
    const [vsa] = ofType(input, VSA);
    pred(vsa!).timeVerified = time;
    vsa!.timestamps = [{ source: 'transparency-log', time }];
    return input;
  }

  it('accepts one verified within production’s 168 hours', async () => {
    expect((await decide(vsaAt('2026-11-14T12:00:00Z'), 'vsa-fresh')).allow).toBe(true);
  });

  it('denies one verified earlier', async () => {
    const d = await decide(vsaAt('2026-11-13T11:59:59Z'), 'vsa-stale');
    expect(d.ids).toEqual(['promotion.vsa']);
    expect(d.violations[0]!.message).toMatch(
      /verified at 2026-11-13T11:59:59Z, more than 168 hours/,
    );
  });
});
