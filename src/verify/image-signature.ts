import { VerifyError } from '../errors.js';
import { clip, isPlainObject } from '../util/input.js';
import { STATEMENT_TYPE_V1 } from './statement.js';
import type {
  ArtifactDigest,
  InTotoStatement,
  InTotoSubject,
  VerifiedAttestation,
  VerifiedBundle,
} from './types.js';
import { verifyBundle, type VerifyBundleOptions } from './verifier.js';

/**
 * The predicate type a legacy cosign image signature (`.sig`) is given in the policy input: the
 * one cosign v3's `sign` writes in its bundle format (an in-toto statement about the image with
 * an empty predicate), so a policy asking for an image signature reads both layouts alike. Its
 * predicate is `{dockerReference, optional}` from the signed payload; its subject is the image
 * digest the payload names.
 */
export const COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';

/** `critical.type` of cosign's simple-signing payload (containers/image's signature format). */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** What the verify step needs of an image-signature evidence: the bundle and the signed payload. */
export interface ImageSignatureInput {
  bytes: Buffer;
  payload?: Buffer;
}

/** Verifies the message-signature bundle over the payload, exactly as stored. */
export function verifyImageSignature(
  e: ImageSignatureInput,
  opts: Omit<VerifyBundleOptions, 'artifact'>,
): VerifiedBundle {
  if (!e.payload) {
    throw new VerifyError('EVIDENCE_MALFORMED', 'an image signature came without its payload');
  }
  const verified = verifyBundle(e.bytes, { ...opts, artifact: { bytes: e.payload } });
  if (verified.contentType !== 'message') {
    throw new VerifyError('DSSE_PAYLOAD_TYPE', 'an image signature must be a message signature');
  }
  return verified;
}

/**
 * The attestation view of a verified image signature about `digest`: the payload must be a
 * cosign container image signature, and the image digest it signs must be `digest`
 * (SUBJECT_MISMATCH otherwise: a signature of another image).
 */
export function imageSignatureOf(
  verified: VerifiedBundle,
  e: ImageSignatureInput,
  digest: ArtifactDigest,
): VerifiedAttestation {
  const { dockerReference, signed, optional } = parsePayload(e.payload ?? Buffer.alloc(0));
  const wanted = `${digest.algorithm}:${digest.hex.toLowerCase()}`;
  if (signed.toLowerCase() !== wanted) {
    throw new VerifyError(
      'SUBJECT_MISMATCH',
      `the image signature signs ${clip(signed, 140)}, not ${clip(wanted, 140)}`,
    );
  }
  const subject: InTotoSubject = {
    ...(dockerReference ? { name: dockerReference } : {}),
    digest: { [digest.algorithm]: digest.hex.toLowerCase() },
  };
  const predicate = { dockerReference, optional };
  const statement: InTotoStatement = {
    _type: STATEMENT_TYPE_V1,
    subject: [subject],
    predicateType: COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE,
    predicate,
  };
  return {
    ...verified,
    statement,
    predicateType: COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE,
    predicate,
    subjects: [subject],
    matchedSubject: subject,
  };
}

/**
 * `{"critical": {"identity": {"docker-reference": ...}, "image": {"docker-manifest-digest":
 * "sha256:..."}, "type": "cosign container image signature"}, "optional": {...} | null}`.
 */
function parsePayload(payload: Buffer): {
  dockerReference: string;
  signed: string;
  optional: Record<string, unknown>;
} {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw invalid('the image signature payload is not json');
  }
  const critical = isPlainObject(doc) ? doc.critical : undefined;
  if (!isPlainObject(doc) || !isPlainObject(critical)) {
    throw invalid('the image signature payload has no critical section');
  }
  if (critical.type !== COSIGN_SIGNATURE_TYPE) {
    throw invalid(
      `the signed payload's type is ${clip(JSON.stringify(critical.type) ?? 'missing', 80)}, not ${JSON.stringify(COSIGN_SIGNATURE_TYPE)}`,
    );
  }
  const image = critical.image;
  const signed = isPlainObject(image) ? image['docker-manifest-digest'] : undefined;
  if (typeof signed !== 'string' || signed === '') {
    throw invalid('the image signature payload names no docker-manifest-digest');
  }
  const identity = critical.identity;
  const ref = isPlainObject(identity) ? identity['docker-reference'] : undefined;
  if (ref !== undefined && typeof ref !== 'string') {
    throw invalid('the image signature payload docker-reference is not a string');
  }
  const optional = doc.optional;
  if (optional !== undefined && optional !== null && !isPlainObject(optional)) {
    throw invalid('the image signature payload optional section is not an object');
  }
  return { dockerReference: ref ?? '', signed, optional: optional ?? {} };
}

const invalid = (message: string) => new VerifyError('STATEMENT_INVALID', message);
