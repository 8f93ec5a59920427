import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { Bundle, TransparencyLogEntry } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import type { SignedEntity } from '@sigstore/verify';
import { VerifyError } from '../errors.js';
import type { ArtifactDigest, ArtifactInput } from './types.js';

type SignatureContent = SignedEntity['signature'];
type MessageSignature = Extract<
  Bundle['content'],
  { $case: 'messageSignature' }
>['messageSignature'];
type Envelope = Extract<Bundle['content'], { $case: 'dsseEnvelope' }>['dsseEnvelope'];

const HASHES: Partial<Record<HashAlgorithm, ArtifactDigest['algorithm']>> = {
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

/**
 * The message-signature content the gate verifies. With the artifact's bytes, the signature is
 * checked over them and the bundle's messageDigest must equal their digest (@sigstore/verify
 * checks neither against each other). With only a digest, @sigstore/verify cannot help: it needs
 * the bytes, so the signature is checked here over the pre-hashed message.
 */
export function messageContent(sig: MessageSignature, artifact: ArtifactInput): SignatureContent {
  const algorithm = sig.messageDigest ? HASHES[sig.messageDigest.algorithm] : undefined;
  if (!algorithm) {
    throw new VerifyError(
      'DIGEST_UNSUPPORTED',
      'bundle message digest algorithm is not sha256 or sha512',
    );
  }
  const claimed = Buffer.from(sig.messageDigest!.digest);
  const actual =
    'bytes' in artifact
      ? crypto.createHash(algorithm).update(artifact.bytes).digest()
      : digestFor(artifact.digest, algorithm);
  if (!equal(actual, claimed)) {
    throw new VerifyError(
      'ARTIFACT_MISMATCH',
      `artifact ${algorithm} is ${actual.toString('hex')}, the bundle signs ${claimed.toString('hex')}`,
    );
  }
  const signature = Buffer.from(sig.signature);
  return {
    signature,
    compareSignature: (s) => equal(s, signature),
    compareDigest: (d) => equal(d, actual),
    verifySignature: (key) =>
      'bytes' in artifact
        ? safeVerify(() => crypto.verify(algorithm, artifact.bytes, key, signature))
        : verifyPrehashed(key, algorithm, actual, signature),
  };
}

function digestFor(want: ArtifactDigest, algorithm: ArtifactDigest['algorithm']): Buffer {
  if (want.algorithm !== algorithm) {
    throw new VerifyError(
      'ARTIFACT_MISMATCH',
      `the bundle signs a ${algorithm} digest, the artifact was given as ${want.algorithm}`,
    );
  }
  return Buffer.from(want.hex, 'hex');
}

/**
 * Verifies a signature over a message known only by its digest. ECDSA signs the digest itself,
 * but node:crypto always hashes its input (null means the key's default, SHA-256), so ECDSA goes
 * through @noble/curves with prehash off; RSA PKCS#1 v1.5 wraps it in a DigestInfo that is rebuilt
 * and compared. Ed25519 hashes the whole message inside the algorithm: impossible from a digest.
 */
function verifyPrehashed(
  key: crypto.KeyObject,
  algorithm: string,
  digest: Buffer,
  signature: Buffer,
): boolean {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return safeVerify(() => verifyECDSAPrehashed(key, digest, signature));
    case 'rsa':
      return safeVerify(() => {
        const recovered = crypto.publicDecrypt(
          { key, padding: crypto.constants.RSA_PKCS1_PADDING },
          signature,
        );
        return equal(recovered, Buffer.concat([DIGEST_INFO[algorithm]!, digest]));
      });
    default:
      throw new VerifyError(
        'DIGEST_UNSUPPORTED',
        `a ${key.asymmetricKeyType ?? 'unknown'} signature cannot be checked from a digest alone: give the artifact file`,
      );
  }
}

// @noble/curves (ESM, required synchronously: Node 20.19 and later) is loaded on the first
// digest-only ECDSA signature, not with the verifier (issue 11: the CLI's cold start).
type Curves = typeof import('@noble/curves/nist.js');
const CURVES = { 'P-256': 'p256', 'P-384': 'p384', 'P-521': 'p521' } as const;

function verifyECDSAPrehashed(key: crypto.KeyObject, digest: Buffer, signature: Buffer): boolean {
  const jwk = key.export({ format: 'jwk' });
  const name = Object.hasOwn(CURVES, jwk.crv ?? '') ? CURVES[jwk.crv as keyof typeof CURVES] : null;
  const curve = name && (createRequire(import.meta.url)('@noble/curves/nist.js') as Curves)[name];
  if (!curve || !jwk.x || !jwk.y) return false;
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x, 'base64url'),
    Buffer.from(jwk.y, 'base64url'),
  ]);
  // lowS: false because Go and OpenSSL signers do not normalise S.
  return curve.verify(signature, digest, point, { prehash: false, format: 'der', lowS: false });
}

// DER DigestInfo prefixes (RFC 8017 section 9.2, note 1).
const DIGEST_INFO: Record<string, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/**
 * DSSE content. Rekor v2 logs a DSSE envelope as hashedrekord 0.0.2 over the digest of the
 * pre-authentication encoding (rekor-v2 spec 6.1.4), where @sigstore/verify 3.1 compares the
 * entry's digest with the payload's and rejects a valid bundle. For those entries the digest
 * compared is SHA-256(PAE(payloadType, payload)); for every other kind it stays the payload's.
 */
export function dsseContent(env: Envelope, entries: TransparencyLogEntry[]): SignatureContent {
  const kinds = new Set(entries.map((e) => `${e.kindVersion?.kind}:${e.kindVersion?.version}`));
  const overPAE = kinds.has('hashedrekord:0.0.2');
  if (overPAE && kinds.size > 1) {
    throw new VerifyError(
      'TLOG_BODY_MISMATCH',
      `dsse bundle mixes log entry kinds: ${[...kinds].join(', ')}`,
    );
  }
  if (env.signatures.length !== 1) {
    throw new VerifyError(
      'SIGNATURE_INVALID',
      `expected 1 dsse signature, got ${env.signatures.length}`,
    );
  }
  const pae = dsse.preAuthEncoding(env.payloadType, env.payload);
  const signature = Buffer.from(env.signatures[0]!.sig);
  const digest = crypto
    .createHash('sha256')
    .update(overPAE ? pae : env.payload)
    .digest();
  return {
    signature,
    compareSignature: (s) => equal(s, signature),
    compareDigest: (d) => equal(d, digest),
    verifySignature: (key) => safeVerify(() => crypto.verify(null, pae, key, signature)),
  };
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function safeVerify(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}
