import type { Evidence } from '../collect/types.js';
import { GateError, toGateError } from '../errors.js';
import type { ArtifactDigest } from '../subject.js';
import { attestationOf } from './attestation.js';
import { verifyEnvelope } from './envelope.js';
import { imageSignatureOf, verifyImageSignature } from './image-signature.js';
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
  if (e.via) return verifyForIndex(e, subjects, ctx);
  const attestations: VerifiedAttestation[] = [];
  let error: GateError | undefined;
  let verified: VerifiedBundle | undefined;
  for (const digest of subjects) {
    try {
      attestations.push(
        e.kind === 'dsse-envelope'
          ? verifyEnvelope(e.bytes, { keys: ctx.keys, subject: { digest } })
          : e.kind === 'image-signature'
            ? imageSignatureOf((verified ??= verifyImageSignature(e, ctx)), e, digest)
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

/**
 * Evidence found for a platform manifest of an image index: it must be about that manifest, and
 * it counts for the index asked about, the digest decided on (the index's bytes, checked against
 * that digest, list the manifest).
 */
function verifyForIndex(
  e: Evidence,
  subjects: ArtifactDigest[],
  ctx: VerifyContext,
): EvidenceOutcome {
  const via = e.via!;
  const asked = subjects.some(
    (s) => s.algorithm === via.index.algorithm && s.hex === via.index.hex,
  );
  const onManifest = verifyOne({ ...e, via: undefined }, asked ? [via.manifest] : [], ctx);
  if (!asked || onManifest.attestations.length === 0) {
    return asked ? onManifest : { evidence: e, attestations: [], error: notAsked(via) };
  }
  const manifest = `${via.manifest.algorithm}:${via.manifest.hex}`;
  const attestations = onManifest.attestations.map((a) => ({
    ...a,
    matchedSubject: { digest: { [via.index.algorithm]: via.index.hex } },
    platformManifest: { digest: manifest, ...(via.platform ? { platform: via.platform } : {}) },
  }));
  return { evidence: e, attestations };
}

const notAsked = (via: NonNullable<Evidence['via']>) =>
  new GateError(
    'SUBJECT_MISMATCH',
    `found for a platform manifest of ${via.index.algorithm}:${via.index.hex}, which is not a subject of this request`,
  );
