import crypto from 'node:crypto';
import { dsse } from '@sigstore/core';
import { VerifyError } from '../errors.js';
import { isPlainObject, parseJSON, sha256Hex } from '../util/input.js';
import { attestationOf } from './attestation.js';
import { parseTrustedKey, type ParsedKey } from './key-id.js';
import type { ArtifactInput, TrustedKey, VerifiedAttestation } from './types.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Verifies a bare DSSE envelope (no bundle, no log entry) with the configured keys. Such evidence
 * carries no trusted time and no transparency: it is accepted only when a trusted key signed it,
 * and the policy sees that it has no log entry and no timestamp.
 */
export function verifyEnvelope(
  bytes: Buffer,
  opts: { keys: TrustedKey[]; subject: ArtifactInput },
): VerifiedAttestation {
  const env = parseJSON(bytes, 'dsse envelope');
  if (
    !isPlainObject(env) ||
    typeof env.payload !== 'string' ||
    typeof env.payloadType !== 'string'
  ) {
    throw new VerifyError('BUNDLE_INVALID', 'dsse envelope needs payload and payloadType strings');
  }
  if (!BASE64.test(env.payload))
    throw new VerifyError('BUNDLE_BAD_BASE64', 'dsse envelope payload is not valid base64');
  const sigs = Array.isArray(env.signatures) ? env.signatures : [];
  if (sigs.length === 0)
    throw new VerifyError('SIGNATURE_INVALID', 'dsse envelope has no signatures');
  if (opts.keys.length === 0)
    throw new VerifyError('PUBLIC_KEY_INVALID', 'a bare dsse envelope needs a trusted key');
  const payload = Buffer.from(env.payload, 'base64');
  const pae = dsse.preAuthEncoding(env.payloadType, payload);
  const keyId = signingKey(pae, sigs, opts.keys.map(parseTrustedKey));
  const verified = {
    contentType: 'dsse' as const,
    signer: { kind: 'key' as const, keyId },
    logEntries: [],
    timestamps: [],
    bundleDigest: sha256Hex(bytes),
    mediaType: 'application/vnd.dsse.envelope.v1+json',
    payloadType: env.payloadType,
    payload,
  };
  return attestationOf(verified, opts.subject);
}

function signingKey(pae: Buffer, sigs: unknown[], keys: ParsedKey[]): string {
  for (const s of sigs) {
    if (!isPlainObject(s) || typeof s.sig !== 'string' || !BASE64.test(s.sig)) continue;
    const sig = Buffer.from(s.sig, 'base64');
    // The envelope's keyid is unsigned: every trusted key is tried, the signer is the one
    // that verifies.
    for (const k of keys) if (verifies(k.publicKey, pae, sig)) return k.keyId;
  }
  throw new VerifyError(
    'SIGNATURE_INVALID',
    `no signature of the dsse envelope verifies with a trusted key (${sigs.length} tried)`,
  );
}

function verifies(key: crypto.KeyObject, data: Buffer, sig: Buffer): boolean {
  const hash = key.asymmetricKeyType === 'ed25519' ? null : curveHash(key);
  try {
    return crypto.verify(hash, data, key, sig);
  } catch {
    return false;
  }
}

function curveHash(key: crypto.KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
}
