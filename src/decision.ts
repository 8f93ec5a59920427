import type { AcceptedBreakGlass, BreakGlassRefusal } from './breakglass/types.js';
import type { CollectRejection, SearchReport, SourceFailure } from './collect/types.js';
import type { GateErrorCode } from './errors.js';
import type { PolicySubject } from './evaluate/input.js';
import type { RuleResult } from './evaluate/output.js';
import type { EvidenceOutcome } from './verify/evidence.js';
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
  /** the name its log signed the checkpoint of its inclusion proof under */
  checkpointOrigin?: string;
  /** the trusted root whose authorities certified a verified bundle */
  trustRoot?: { name: string; digest: string };
  /** the kind of time its certificate (or key) was checked at */
  timeSource?: 'transparency-log' | 'timestamp-authority' | 'none';
  /** how its log entry was checked: a Merkle inclusion proof, or only the log's promise (SET) */
  tlog?: 'inclusion-proof' | 'inclusion-promise';
  /** the verification result came from the verification cache (the policy ran all the same) */
  cached?: true;
  /** the platform manifest of the image index decided on that the statement is about */
  platformManifest?: { digest: string; platform?: string };
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
  /** where the sources looked and what each place held (registries: each layout searched) */
  searched?: SearchReport[];
  error?: { code: GateErrorCode; message: string };
  /** the break-glass request that turned a deny into an allow, and the violations it set aside */
  override?: AcceptedBreakGlass & { overridden: string[] };
  /** break-glass requests that were presented and refused, with why */
  breakGlassRefused?: BreakGlassRefusal[];
  digests: { policy?: string; trustRoot: string; config: string; input?: string };
  /** the caller's context: its keys, and that nobody signed it (policies never relax on it) */
  context?: { verified: false; keys: string[] };
  /** `gate recheck`: the recorded decision this one decided again, and what that one was */
  recheckOf?: { id: string; outcome: Outcome };
}

/** Everything a decision says besides its verdict: who asked what, when, and on what evidence. */
export type DecisionFacts = Omit<
  Decision,
  | 'outcome'
  | 'allow'
  | 'violations'
  | 'warnings'
  | 'rules'
  | 'error'
  | 'override'
  | 'breakGlassRefused'
>;

/** The verdict part of a decision, as decide() returns it. */
export type Verdict = Pick<
  Decision,
  'outcome' | 'allow' | 'violations' | 'warnings' | 'rules' | 'error' | 'override'
>;

/** The assemble step: the facts, the verdict, and the break-glass requests refused. */
export function assemble(
  facts: DecisionFacts,
  verdict: Verdict,
  refused: BreakGlassRefusal[],
): Decision {
  return { ...facts, ...verdict, ...(refused.length ? { breakGlassRefused: refused } : {}) };
}

/** Why each candidate piece of evidence was used or not: one report per piece of evidence. */
export function evidenceReports(
  collectRejected: CollectRejection[],
  outcomes: EvidenceOutcome[],
): EvidenceReport[] {
  const reports: EvidenceReport[] = collectRejected.map((r) => ({
    id: r.id,
    source: r.source,
    status: 'rejected',
    code: r.code,
    message: r.message,
  }));
  for (const { evidence: e, attestations, error, cached } of outcomes) {
    const a = attestations[0];
    if (a) {
      reports.push({
        id: e.id,
        source: e.source,
        status: 'verified',
        predicateType: a.predicateType,
        signer: a.signer,
        ...(a.logEntries[0] ? { logIndex: a.logEntries[0].logIndex } : {}),
        ...(a.logEntries[0]?.checkpointOrigin
          ? { checkpointOrigin: a.logEntries[0].checkpointOrigin }
          : {}),
        ...(a.trustRoot ? { trustRoot: a.trustRoot } : {}),
        ...(a.timeSource ? { timeSource: a.timeSource } : {}),
        ...(a.tlog ? { tlog: a.tlog } : {}),
        ...(a.platformManifest ? { platformManifest: a.platformManifest } : {}),
        ...(cached ? { cached } : {}),
      });
    } else if (error) {
      reports.push({
        id: e.id,
        source: e.source,
        status: 'rejected',
        code: error.code,
        message: error.message,
        ...(cached ? { cached } : {}),
      });
    }
  }
  return reports;
}
