import type { Evidence } from '../collect/types.js';
import { toGateError, type GateError } from '../errors.js';
import type { ArtifactDigest } from '../subject.js';
import { attestationOf } from './attestation.js';
import { verifyEnvelope } from './envelope.js';
import type { CompiledIdentityRule } from './identity.js';
import type { Trust } from './trust.js';
import type { TrustedKey, VerifiedAttestation, VerifiedBundle } from './types.js';
import { verifyBundle } from './verifier.js';

export interface VerifyContext {
  trust: Trust;
  identities: CompiledIdentityRule[] | 'any';
  keys: TrustedKey[];
}

/**
 * What one piece of evidence turned out to be: the attestations it makes about the subjects of
 * the request (one per subject it names), or, when it is about none of them, the error that
 * says why (SUBJECT_MISMATCH for evidence about another artifact).
 */
export interface EvidenceOutcome {
  evidence: Evidence;
  attestations: VerifiedAttestation[];
  error?: GateError;
}

/**
 * The verify step: each piece of evidence is verified once, then matched against every subject
 * of the request. Outcomes keep the order of the evidence.
 */
export function verifyEvidence(
  evidence: Evidence[],
  subjects: ArtifactDigest[],
  ctx: VerifyContext,
): EvidenceOutcome[] {
  return evidence.map((e) => verifyOne(e, subjects, ctx));
}

function verifyOne(e: Evidence, subjects: ArtifactDigest[], ctx: VerifyContext): EvidenceOutcome {
  const attestations: VerifiedAttestation[] = [];
  let error: GateError | undefined;
  let verified: VerifiedBundle | undefined;
  for (const digest of subjects) {
    try {
      attestations.push(
        e.kind === 'dsse-envelope'
          ? verifyEnvelope(e.bytes, { keys: ctx.keys, subject: { digest } })
          : attestationOf(
              (verified ??= verifyBundle(e.bytes, {
                trust: ctx.trust,
                identities: ctx.identities,
                keys: ctx.keys,
              })),
              { digest },
            ),
      );
    } catch (err) {
      error = toGateError(err);
      // A bad signature is bad for every subject; only "not about this one" looks further.
      if (error.code !== 'SUBJECT_MISMATCH') break;
    }
  }
  return attestations.length > 0
    ? { evidence: e, attestations }
    : { evidence: e, attestations, error };
}
