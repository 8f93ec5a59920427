import type { AcceptedBreakGlass, BreakGlassRefusal } from './breakglass/types.js';
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
  /** when the decision was made */
  time: string;
  /** the time it was decided as of, when not `time` (`gate check --at`) */
  asOf?: string;
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
  /** the break-glass request that turned a deny into an allow, and the violations it set aside */
  override?: AcceptedBreakGlass & { overridden: string[] };
  /** break-glass requests that were presented and refused, with why */
  breakGlassRefused?: BreakGlassRefusal[];
  digests: { policy?: string; trustRoot: string; config: string; input?: string };
  /** the caller's context: its keys, and that nobody signed it (policies never relax on it) */
  context?: { verified: false; keys: string[] };
}
