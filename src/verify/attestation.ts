import crypto from 'node:crypto';
import { VerifyError } from '../errors.js';
import { matchSubject, parseStatement } from './statement.js';
import type {
  ArtifactDigest,
  ArtifactInput,
  InTotoSubject,
  VerifiedAttestation,
  VerifiedBundle,
} from './types.js';
import { verifyBundle, type VerifyBundleOptions } from './verifier.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface VerifyAttestationOptions extends Omit<VerifyBundleOptions, 'artifact'> {
  /** the artifact the decision is about: one subject of the statement must carry this digest */
  subject: ArtifactInput;
}

/**
 * Verifies a DSSE bundle carrying an in-toto statement about `subject`. @sigstore/verify checks
 * the envelope's signature but never looks inside it: the payload type, the statement's shape and
 * the subject digest are checked here.
 */
export function verifyAttestation(
  input: Buffer | string | unknown,
  opts: VerifyAttestationOptions,
): VerifiedAttestation {
  const verified = verifyBundle(input, { ...opts, artifact: undefined });
  return attestationOf(verified, opts.subject);
}

/** The in-toto view of an already verified DSSE bundle. */
export function attestationOf(
  verified: VerifiedBundle,
  subject: ArtifactInput,
): VerifiedAttestation {
  if (verified.contentType !== 'dsse' || !verified.payload) {
    throw new VerifyError(
      'DSSE_PAYLOAD_TYPE',
      'bundle holds a message signature, not an attestation',
    );
  }
  if (verified.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new VerifyError(
      'DSSE_PAYLOAD_TYPE',
      `dsse payload type is ${JSON.stringify(verified.payloadType)}, expected ${IN_TOTO_PAYLOAD_TYPE}`,
    );
  }
  const statement = parseStatement(verified.payload);
  const matchedSubject = matchAny(statement, subject);
  return {
    ...verified,
    statement,
    predicateType: statement.predicateType,
    predicate: statement.predicate,
    subjects: statement.subject,
    matchedSubject,
  };
}

/** Given the artifact's bytes, a subject may name it by sha256 or sha512. */
function matchAny(
  statement: Parameters<typeof matchSubject>[0],
  subject: ArtifactInput,
): InTotoSubject {
  if ('digest' in subject) return matchSubject(statement, subject.digest);
  const candidates: ArtifactDigest[] = (['sha256', 'sha512'] as const).map((algorithm) => ({
    algorithm,
    hex: crypto.createHash(algorithm).update(subject.bytes).digest('hex'),
  }));
  const hit = candidates.find((d) =>
    statement.subject.some((s) => s.digest[d.algorithm]?.toLowerCase() === d.hex),
  );
  return matchSubject(statement, hit ?? candidates[0]!);
}
