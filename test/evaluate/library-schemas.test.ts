import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { checkPolicyInput } from '../../src/evaluate/input.js';
import { packagePath } from '../../src/util/paths.js';

/**
 * The default library's documents against the schemas that describe them to users: its data
 * (policy-data), its example inputs (policy-input) and the change statements in them
 * (change-predicate). A setting the library reads but the schema refuses, or the reverse, is
 * a contract that lies.
 */
const json = (...p: string[]) => JSON.parse(readFileSync(packagePath(...p), 'utf8')) as unknown;
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map<string, ValidateFunction>();
const validator = (file: string): ValidateFunction => {
  if (!validators.has(file)) validators.set(file, ajv.compile(json('schemas', file) as object));
  return validators.get(file)!;
};
const CHANGE = 'https://gate.dev/attestation/change/v1';

const examples = readdirSync(packagePath('examples', 'policy-inputs'))
  .filter((f) => f.endsWith('.json') && f !== 'expected.json')
  .map((f) => [f, json('examples', 'policy-inputs', f)] as const);

describe('the default library’s documents', () => {
  it('data.json is valid policy data', () => {
    const valid = validator('policy-data.schema.json');
    expect(valid(json('policies', 'data.json')), JSON.stringify(valid.errors)).toBe(true);
  });

  it('policy data refuses an unknown tests.match and a non-positive promotion age', () => {
    const valid = validator('policy-data.schema.json');
    const env = (e: object) => ({
      gate: { config: { environments: { p: { required_rules: [], ...e } } } },
    });
    expect(valid(env({ tests: { match: 'passed_tests' } }))).toBe(true);
    expect(valid(env({ tests: { match: 'names' } }))).toBe(false);
    expect(valid(env({ promotion: { max_age_hours: 0 } }))).toBe(false);
  });

  it.each(examples)('%s is a valid policy input', (_, input) => {
    expect(() => checkPolicyInput(input)).not.toThrow();
  });

  it('change statements in the examples are valid change predicates', () => {
    const valid = validator('change-predicate.schema.json');
    const predicates = examples.flatMap(([, input]) =>
      (input as { attestations: Array<{ predicateType: string; predicate: unknown }> }).attestations
        .filter((a) => a.predicateType === CHANGE)
        .map((a) => a.predicate),
    );
    expect(predicates.length).toBe(3);
    for (const p of predicates) expect(valid(p), JSON.stringify(valid.errors)).toBe(true);
  });

  it('a change predicate needs change kinds or a ticket, in their types', () => {
    const valid = validator('change-predicate.schema.json');
    expect(valid({ ticket: 'INC-1' })).toBe(true);
    expect(valid({ changeKinds: ['metadata'] })).toBe(true);
    expect(valid({ summary: 'nothing stated' })).toBe(false);
    expect(valid({ changeKinds: 'metadata' })).toBe(false);
    expect(valid({ changeKinds: [] })).toBe(false);
  });
});
