import type { SourceFailure } from './collect/types.js';
import type { PolicySubject } from './evaluate/input.js';
import type { RuleResult } from './evaluate/output.js';
import type { Signer } from './verify/types.js';

/** allow, deny, an allow by break-glass override, or could-not-decide. */
export type Outcome = 'allow' | 'deny' | 'override' | 'error';

/** Why each candidate piece of evidence was used or not. */
export interface EvidenceReport {
  id: string;
  source: string;
  status: 'verified' | 'rejected';
  predicateType?: string;
  signer?: Signer;
  logIndex?: string;
  code?: string;
  message?: string;
}

/** The gate's answer (schemas/decision.schema.json). */
export interface Decision {
  id: string;
  time: string;
  gateVersion: string;
  environment: string;
  subjects: PolicySubject[];
  mode: 'enforce' | 'dry-run';
  outcome: Outcome;
  /** the answer: true for allow and override, and for a would-deny in dry-run */
  allow: boolean;
  violations: RuleResult[];
  warnings: RuleResult[];
  rules: string[];
  evidence: EvidenceReport[];
  sourceFailures: SourceFailure[];
  error?: { code: string; message: string };
  override?: {
    requestId: string;
    requester: string;
    justification: string;
    ticket: string;
    expiresAt: string;
    signers: string[];
    /** the violations the override set aside */
    overridden: string[];
  };
  /** break-glass requests that were presented and refused, with why */
  breakGlassRefused?: Array<{ requestId?: string; source: string; code: string; message: string }>;
  digests: { policy?: string; trustRoot: string; config: string; input?: string };
}
