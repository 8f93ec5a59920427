import { PolicyError } from '../errors.js';
import { schemaChecker } from '../util/schemas.js';

/** One rule's finding: what failed, what would pass, which evidence it looked at. */
export interface RuleResult {
  id: string;
  message: string;
  remediation: string;
  attestations: string[];
  subject?: string;
  effectiveOn?: string;
}

/** What a gate policy's `decision` returns (schemas/policy-output.schema.json). */
export interface PolicyResult {
  allow: boolean;
  violations: RuleResult[];
  warnings: RuleResult[];
  rules: string[];
}

const checkSchema = schemaChecker(
  'policy-output.schema.json',
  'POLICY_OUTPUT_INVALID',
  'policy output',
);

/**
 * A policy's output is untrusted too (a custom policy can return anything): it must match the
 * schema, and `allow` must agree with the violations. Anything else is "could not decide",
 * which the gate never turns into an allow.
 */
export function checkPolicyOutput(result: unknown): PolicyResult {
  checkSchema(result);
  const out = result as PolicyResult;
  if (out.allow && out.violations.length > 0) {
    throw new PolicyError(
      'POLICY_OUTPUT_INVALID',
      `policy output allows with ${out.violations.length} violations`,
    );
  }
  if (!out.allow && out.violations.length === 0) {
    throw new PolicyError(
      'POLICY_OUTPUT_INVALID',
      'policy output denies without naming a violation',
    );
  }
  return out;
}
