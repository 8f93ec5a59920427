import { schemaChecker } from '../util/schemas.js';
import type { CollectRejection } from '../collect/types.js';
import type { EvidenceOutcome } from '../verify/evidence.js';
import type { ImageRef } from '../subject.js';
import type { Rejection, VerifiedAttestation } from '../verify/types.js';

/** A subject the decision is about (schemas/policy-input.schema.json). */
export interface PolicySubject {
  name?: string;
  digest: Record<string, string>;
  version?: string;
  image?: ImageRef;
}

export interface PolicyAttestation {
  id: string;
  source: string;
  subject: { name?: string; digest: Record<string, string> };
  predicateType: string;
  predicate: unknown;
  statement: unknown;
  signer: VerifiedAttestation['signer'];
  logEntries: VerifiedAttestation['logEntries'];
  timestamps: VerifiedAttestation['timestamps'];
  platformManifest?: VerifiedAttestation['platformManifest'];
}

export interface PolicyRejection extends Rejection {
  id: string;
  source: string;
}

/** The one JSON document a policy sees (schemas/policy-input.schema.json). */
export interface PolicyInput {
  subjects: PolicySubject[];
  environment: string;
  /** RFC 3339: the decision's "now", given, so a decision can be replayed */
  effectiveTime: string;
  attestations: PolicyAttestation[];
  rejected: PolicyRejection[];
  context: Record<string, unknown>;
  breakGlass: unknown[];
}

/** The policy's view of a verified attestation: data only, no bytes. */
export function toPolicyAttestation(a: VerifiedAttestation, source: string): PolicyAttestation {
  const { name, digest } = a.matchedSubject;
  return {
    id: a.bundleDigest,
    source,
    subject: name === undefined ? { digest } : { name, digest },
    predicateType: a.predicateType,
    predicate: a.predicate ?? {},
    statement: a.statement,
    signer: a.signer,
    logEntries: a.logEntries,
    timestamps: a.timestamps,
    ...(a.platformManifest ? { platformManifest: a.platformManifest } : {}),
  };
}

/** What the input step is given: the request, its time, and what the evidence turned out to be. */
export interface InputParts {
  subjects: PolicySubject[];
  environment: string;
  time: Date;
  outcomes: EvidenceOutcome[];
  /** evidence a source found but could not turn into something verifiable */
  collectRejected: CollectRejection[];
  context: Record<string, unknown> | undefined;
  breakGlass: unknown[];
}

/**
 * The input step: the one document the policy decides on. Evidence about another artifact is
 * not a failed check of this one, so the policy is not told about it.
 */
export function policyInputOf(p: InputParts): PolicyInput {
  const attestations = p.outcomes.flatMap((o) =>
    o.attestations.map((a) => toPolicyAttestation(a, o.evidence.source)),
  );
  const rejected: PolicyRejection[] = [...p.collectRejected];
  for (const { evidence, error } of p.outcomes) {
    if (error && error.code !== 'SUBJECT_MISMATCH')
      rejected.push({
        id: evidence.id,
        source: evidence.source,
        code: error.code,
        message: error.message,
      });
  }
  return {
    subjects: p.subjects,
    environment: p.environment,
    effectiveTime: p.time.toISOString(),
    attestations,
    rejected,
    context: p.context ?? {},
    breakGlass: p.breakGlass,
  };
}

/** Checks a policy input against schemas/policy-input.schema.json before any policy sees it. */
export const checkPolicyInput: (input: unknown) => void = schemaChecker(
  'policy-input.schema.json',
  'POLICY_INPUT_INVALID',
  'policy input',
);
