import type { SourceFailure } from './collect/types.js';
import type { Decision, Outcome, Verdict } from './decision.js';
import { GateError, type GateErrorCode } from './errors.js';
import type { PolicyResult } from './evaluate/output.js';

export interface DecideInput {
  /** the policy's result, or the error that kept it from answering */
  policy: PolicyResult | GateError;
  /** failures of sources that are not optional: the gate could not look everywhere */
  failures: SourceFailure[];
  mode: 'enforce' | 'dry-run';
  /** a verified, unexpired, unconsumed break-glass request for this subject and environment */
  override?: Omit<NonNullable<Decision['override']>, 'overridden'> | undefined;
}

/**
 * Pure: policy result + source failures + break-glass + mode -> verdict. Never an allow when the
 * gate could not decide; a dry-run allows a would-deny but records it as a deny.
 */
export function decide(d: DecideInput): Verdict {
  if (d.policy instanceof GateError) return couldNotDecide(d.policy.code, d.policy.message);
  if (d.failures.length > 0) {
    const f = d.failures[0]!;
    return couldNotDecide(f.code, `could not look at ${f.source}: ${f.message}`, d.policy);
  }
  const { violations, warnings, rules } = d.policy;
  if (d.policy.allow) return { outcome: 'allow', allow: true, violations, warnings, rules };
  if (d.override) {
    const override = { ...d.override, overridden: violations.map((v) => v.id) };
    return { outcome: 'override', allow: true, violations, warnings, rules, override };
  }
  const outcome: Outcome = 'deny';
  return { outcome, allow: d.mode === 'dry-run', violations, warnings, rules };
}

function couldNotDecide(code: GateErrorCode, message: string, partial?: PolicyResult): Verdict {
  return {
    outcome: 'error',
    allow: false,
    violations: partial?.violations ?? [],
    warnings: partial?.warnings ?? [],
    rules: partial?.rules ?? [],
    error: { code, message },
  };
}

/**
 * After deciding, the answer must still be made to stand: an override announced, every decision
 * recorded. When either cannot be done the gate could not decide: never an allow, never an
 * override nobody was told about or that no record shows.
 */
export function couldNotStand(d: Decision, code: GateErrorCode, message: string): Decision {
  return { ...d, outcome: 'error', allow: false, error: { code, message } };
}
