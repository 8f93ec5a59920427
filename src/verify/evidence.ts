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
import { verifyCacheKey, type VerifyCache } from './cache.js';
import { statementSubjectsOf } from './statement-peek.js';

export interface VerifyContext {
  trust: Trust;
  identities: CompiledIdentityRule[] | 'any';
  keys: TrustedKey[];
  /** remembered verification results (see cache.ts); none: every piece is verified */
  cache?: VerifyCache;
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
  /** the verification result (or failure) came from the cache */
  cached?: true;
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
  // Evidence that names none of the subjects cannot matter: no cryptography is spent on it.
  const elsewhere = aboutNoneOf(e, subjects);
  if (elsewhere) return { evidence: e, attestations: [], error: elsewhere };
  const attestations: VerifiedAttestation[] = [];
  let error: GateError | undefined;
  let verified: VerifiedBundle | undefined;
  let cached = false;
  // Once per piece of evidence, however many subjects it is matched against; from the cache
  // when the same bytes were verified on the same ground before.
  const verifyOnce = (): VerifiedBundle => {
    if (verified) return verified;
    const compute = () =>
      e.kind === 'image-signature'
        ? verifyImageSignature(e, ctx)
        : verifyBundle(e.bytes, { trust: ctx.trust, identities: ctx.identities, keys: ctx.keys });
    if (!ctx.cache) return (verified = compute());
    const r = ctx.cache.get(verifyCacheKey(ctx, e.kind, e.bytes, e.payload), compute);
    cached = r.hit;
    if (r.error) throw r.error;
    return (verified = r.value);
  };
  for (const digest of subjects) {
    try {
      attestations.push(
        e.kind === 'dsse-envelope'
          ? verifyEnvelope(e.bytes, { keys: ctx.keys, subject: { digest } })
          : e.kind === 'image-signature'
            ? imageSignatureOf(verifyOnce(), e, digest)
            : attestationFor(verifyOnce(), digest),
      );
    } catch (err) {
      error = toGateError(err);
      // A bad signature is bad for every subject; only "not about this one" looks further.
      if (error.code !== 'SUBJECT_MISMATCH') break;
    }
  }
  const hit = cached ? { cached: true as const } : {};
  return attestations.length > 0
    ? { evidence: e, attestations, ...hit }
    : { evidence: e, attestations, error, ...hit };
}

/**
 * The attestation a verified bundle makes about one subject, made once per bundle and subject:
 * a cached result serves every later decision about the same subject as the same frozen object.
 */
const made = new WeakMap<VerifiedBundle, Map<string, VerifiedAttestation>>();

function attestationFor(verified: VerifiedBundle, digest: ArtifactDigest): VerifiedAttestation {
  let bySubject = made.get(verified);
  if (!bySubject) made.set(verified, (bySubject = new Map()));
  const key = `${digest.algorithm}:${digest.hex}`;
  let a = bySubject.get(key);
  if (!a) {
    a = Object.freeze(attestationOf(verified, { digest }));
    bySubject.set(key, a);
  }
  return a;
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

/**
 * SUBJECT_MISMATCH, without any cryptography, when the evidence plainly names none of the
 * subjects (its statement's subjects, or the image an image signature signs). Anything that
 * cannot be read this cheaply is left to full verification, which reports it with its code.
 */
function aboutNoneOf(e: Evidence, subjects: ArtifactDigest[]): GateError | undefined {
  if (e.kind === 'dsse-envelope') return undefined;
  const named = statementSubjectsOf(e);
  if (!named) return undefined;
  const wanted = new Set(subjects.map((s) => `${s.algorithm}:${s.hex}`));
  if (named.some((d) => wanted.has(d))) return undefined;
  return new GateError(
    'SUBJECT_MISMATCH',
    `about ${named.slice(0, 3).join(', ')}${named.length > 3 ? ', ...' : ''}, none of the subjects asked about`,
  );
}

const notAsked = (via: NonNullable<Evidence['via']>) =>
  new GateError(
    'SUBJECT_MISMATCH',
    `found for a platform manifest of ${via.index.algorithm}:${via.index.hex}, which is not a subject of this request`,
  );
