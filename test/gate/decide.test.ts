import { describe, expect, it } from 'vitest';
import { decide } from '../../src/decide.js';
import { GateError } from '../../src/errors.js';
import type { PolicyResult } from '../../src/evaluate/output.js';

const violation = {
  id: 'tests.passed',
  message: 'tests failed',
  remediation: 'make them pass',
  attestations: ['a'],
};
const allow: PolicyResult = { allow: true, violations: [], warnings: [], rules: ['tests.passed'] };
const deny: PolicyResult = {
  allow: false,
  violations: [violation],
  warnings: [],
  rules: ['tests.passed'],
};
const override = {
  requestId: 'r-1',
  requester: 'oncall',
  justification: 'outage now',
  ticket: 'INC-1',
  expiresAt: 'x',
  signers: ['oncall'],
};

describe('decide', () => {
  it('allows what the policy allows', () => {
    expect(decide({ policy: allow, failures: [], mode: 'enforce' })).toMatchObject({
      outcome: 'allow',
      allow: true,
    });
  });
  it('denies what the policy denies, with its violations', () => {
    expect(decide({ policy: deny, failures: [], mode: 'enforce' })).toMatchObject({
      outcome: 'deny',
      allow: false,
      violations: [violation],
    });
  });
  it('lets a dry-run deny through but calls it a deny', () => {
    expect(decide({ policy: deny, failures: [], mode: 'dry-run' })).toMatchObject({
      outcome: 'deny',
      allow: true,
    });
  });
  it('turns a deny into an override that lists what it overrode', () => {
    const v = decide({ policy: deny, failures: [], mode: 'enforce', override });
    expect(v).toMatchObject({
      outcome: 'override',
      allow: true,
      override: { overridden: ['tests.passed'] },
    });
  });
  it('never overrides an allow (nothing to override)', () => {
    expect(decide({ policy: allow, failures: [], mode: 'enforce', override }).outcome).toBe(
      'allow',
    );
  });
  it('cannot decide when the policy failed, even with an override or in dry-run', () => {
    const err = new GateError('POLICY_UNDEFINED', 'undefined');
    for (const mode of ['enforce', 'dry-run'] as const) {
      expect(decide({ policy: err, failures: [], mode, override })).toMatchObject({
        outcome: 'error',
        allow: false,
        error: { code: 'POLICY_UNDEFINED' },
      });
    }
  });
  it('cannot decide when a source could not be read, even if the policy would allow', () => {
    const v = decide({
      policy: allow,
      failures: [{ source: 'rekor:x', code: 'SOURCE_TIMEOUT', message: 'timed out' }],
      mode: 'enforce',
    });
    expect(v).toMatchObject({ outcome: 'error', allow: false, error: { code: 'SOURCE_TIMEOUT' } });
    expect(v.error!.message).toContain('could not look at rekor:x');
  });
});
