import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { GateError } from '../../src/errors.js';
import { checkPolicyInput, policyInputOf, type PolicyInput } from '../../src/evaluate/input.js';
import type { CompiledPolicy } from '../../src/evaluate/policy.js';
import { evaluateInput, loadConfiguredPolicy } from '../../src/evaluate/run.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import { jsonPaths, replaceAt } from './cases.js';
import { mutation } from './mutate.js';

/**
 * Building and checking the policy input, and evaluating the default policy (make policies) on
 * what passes: a schema-checked input or POLICY_INPUT_INVALID; an evaluation gives a well-formed
 * result or a coded error. The caller's context, the rejections and the subjects are no evidence:
 * whatever they hold, an input without attestations is never allowed.
 */
const EXAMPLES = new URL('../../examples/policy-inputs/', import.meta.url).pathname;
const INPUTS = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.json') && f !== 'expected.json')
  .map((f) => ({
    name: f,
    json: JSON.parse(readFileSync(path.join(EXAMPLES, f), 'utf8')) as PolicyInput,
    toString: () => f,
  }));
const EMPTY = INPUTS.find((i) => i.name === 'deny-no-attestations.json')!.json;

let policy: CompiledPolicy;
beforeAll(async () => {
  policy = (await loadConfiguredPolicy({ config: {} })).policy;
});

/** A result, or a coded error; returns whether the policy allowed. */
function evaluated(input: unknown): boolean {
  const r = evaluateInput(policy, input as PolicyInput);
  if (r instanceof GateError) {
    expect(r.code).toMatch(/^POLICY_/);
    return false;
  }
  expect(typeof r.allow).toBe('boolean');
  expect(Array.isArray(r.violations) && Array.isArray(r.warnings)).toBe(true);
  if (r.allow) expect(r.violations).toEqual([]);
  return r.allow;
}

const N = runs();

describe('policy inputs', () => {
  it('every example input passes the schema and evaluates', () => {
    expect(INPUTS.length).toBeGreaterThan(5);
    for (const i of INPUTS) {
      checkPolicyInput(i.json);
      evaluated(i.json);
    }
    expect(evaluated(EMPTY)).toBe(false);
  });

  it(
    'any field of an example changed, removed, retyped or nested: checked or coded, then evaluated',
    async () => {
      const pick = fc
        .constantFrom(...INPUTS)
        .chain((i) => fc.tuple(fc.constant(i), fc.constantFrom(...jsonPaths(i.json))));
      await checkProperty(
        'policy-input.field-mutation',
        fc.property(pick, mutation, ([i, p], m) => {
          const input = replaceAt(i.json, p, m);
          const r = coded(() => checkPolicyInput(input));
          if (!r.ok) expect(r.code).toBe('POLICY_INPUT_INVALID');
          else evaluated(input);
        }),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 20),
  );

  it(
    'without attestations, no context, subject, rejection, environment or time allows',
    async () => {
      const subject = fc.record(
        {
          name: fc.string(),
          digest: fc.dictionary(fc.constantFrom('sha256', 'sha512', 'md5', ''), fc.string()),
          version: fc.string(),
        },
        { requiredKeys: ['digest'] },
      );
      const rejection = fc.record({
        id: fc.string(),
        source: fc.string(),
        code: fc.constantFrom('SIGNATURE_INVALID', 'SUBJECT_MISMATCH', 'X'),
        message: fc.string(),
      });
      await checkProperty(
        'policy-input.no-evidence-no-allow',
        fc.property(
          fc.array(subject, { minLength: 1, maxLength: 3 }),
          fc.oneof(fc.constantFrom('dev', 'staging', 'production'), fc.string()),
          fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }),
          fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })),
          fc.array(rejection, { maxLength: 3 }),
          (subjects, environment, time, context, collectRejected) => {
            const input = policyInputOf({
              subjects,
              environment,
              time,
              outcomes: [],
              collectRejected: collectRejected as never,
              context,
              breakGlass: [],
            });
            const r = coded(() => checkPolicyInput(input));
            if (!r.ok) expect(r.code).toBe('POLICY_INPUT_INVALID');
            else expect(evaluated(input)).toBe(false);
          },
        ),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );

  it(
    'any json value is checked or refused with a code',
    async () => {
      await checkProperty(
        'policy-input.arbitrary-json',
        fc.property(fc.jsonValue(), (v) => {
          const r = coded(() => checkPolicyInput(v));
          if (!r.ok) expect(r.code).toBe('POLICY_INPUT_INVALID');
          else evaluated(v);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );
});
