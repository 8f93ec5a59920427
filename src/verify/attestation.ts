import crypto from 'node:crypto';
import { VerifyError } from '../errors.js';
import { matchSubject, parseStatement } from './statement.js';
import type {
  ArtifactDigest,
  ArtifactInput,
  InTotoStatement,
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
  const statement = statementOf(verified);
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

/**
 * The statement of a verified bundle, parsed once per bundle: a cached verification result is
 * matched against the subjects of every later decision without parsing its payload again. The
 * statement is frozen, since every decision shares it.
 */
const statements = new WeakMap<VerifiedBundle, InTotoStatement | Error>();

function statementOf(verified: VerifiedBundle): InTotoStatement {
  let s = statements.get(verified);
  if (s === undefined) {
    try {
      s = deepFreeze(parseStatement(verified.payload!));
    } catch (err) {
      s = err instanceof Error ? err : new Error(String(err));
    }
    statements.set(verified, s);
  }
  if (s instanceof Error) throw s;
  return s;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
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
