import { createHash } from 'node:crypto';
import type { Decision, Outcome } from '../../src/decision.js';

/** "sha256:<hex>" of a name, and the same as a policy subject. */
export const digestOf = (name: string) => createHash('sha256').update(name).digest('hex');

export interface DecisionSpec {
  outcome?: Outcome;
  environment?: string;
  subjects?: string[];
  violations?: string[];
  time?: Date;
  /** an override by this requester, of this break-glass request */
  override?: { requester: string; requestId: string };
}

/** A decision as the gate makes it, small enough for hundreds of records. */
export function decisionFor(id: string, spec: DecisionSpec = {}): Decision {
  const outcome = spec.outcome ?? 'allow';
  const violations = (spec.violations ?? []).map((rule) => ({
    id: rule,
    message: `${rule} failed`,
    remediation: `make ${rule} pass`,
    attestations: [],
  }));
  return {
    id,
    time: (spec.time ?? new Date()).toISOString(),
    gateVersion: '0.1.0',
    environment: spec.environment ?? 'production',
    subjects: (spec.subjects ?? ['app']).map((name) => ({
      name,
      digest: { sha256: digestOf(name) },
    })),
    mode: 'enforce',
    outcome,
    allow: outcome === 'allow' || outcome === 'override',
    violations: spec.override ? [] : violations,
    warnings: [],
    rules: ['provenance.required'],
    evidence: [],
    sourceFailures: [],
    ...(spec.override
      ? {
          override: {
            requestId: spec.override.requestId,
            requester: spec.override.requester,
            justification: 'checkout is down',
            ticket: 'INC-1',
            expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
            signers: [spec.override.requester],
            overridden: spec.violations ?? [],
          },
        }
      : {}),
    digests: { trustRoot: 'a'.repeat(64), config: 'b'.repeat(64) },
  };
}

/** The policy input recorded with a decision, for replay. */
export const inputFor = (id: string) => ({ decision: id, context: { pipeline: 'ci' } });
