import { createPublicKey, X509Certificate } from 'node:crypto';
import { keyIdOf } from '../verify/key-id.js';
import { base64, malformed, sha256Field, type EntryBody, type RekorEntry } from './rekor-entry.js';

/**
 * Rebuilds a Sigstore bundle (JSON form, as a .sigstore.json file holds it) from a Rekor v1 entry
 * and the content the entry commits to, so the gate's verifier checks it like any other bundle:
 * the SET, the inclusion proof and its checkpoint against the trusted root, the body against the
 * signature, the signature against the key or Fulcio certificate.
 */

export const BUNDLE_V01_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
export const BUNDLE_V02_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.2';

/** A DSSE envelope in bundle JSON form (payload and sig base64). */
export interface EnvelopeJSON {
  payload: string;
  payloadType: string;
  signatures: { sig: string; keyid?: string }[];
}

const hex2b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

/** The bundle's tlogEntries[0]: numbers as strings, hashes as base64, the body as given. */
export function tlogEntryJSON(entry: RekorEntry, body: EntryBody): Record<string, unknown> {
  const proof = entry.inclusionProof;
  return {
    logIndex: String(entry.logIndex),
    logId: { keyId: hex2b64(entry.logID) },
    kindVersion: { kind: body.kind, version: body.apiVersion },
    integratedTime: String(entry.integratedTime),
    ...(entry.signedEntryTimestamp
      ? { inclusionPromise: { signedEntryTimestamp: entry.signedEntryTimestamp } }
      : {}),
    ...(proof
      ? {
          inclusionProof: {
            logIndex: String(proof.logIndex),
            rootHash: hex2b64(proof.rootHash),
            treeSize: String(proof.treeSize),
            hashes: proof.hashes.map(hex2b64),
            checkpoint: { envelope: proof.checkpoint },
          },
        }
      : {}),
    canonicalizedBody: entry.body,
  };
}

/**
 * Verification material from an entry's verifier (base64 of a PEM certificate or public key).
 * A key gets the hint the gate reports as its key id (key-id.ts): it only narrows which trusted
 * keys are tried; the signer is the trusted key that verifies.
 */
export function verificationMaterialJSON(verifier: unknown, what: string): Record<string, unknown> {
  const pem = base64(verifier, what).toString('utf8');
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) {
      const der = new X509Certificate(pem).raw.toString('base64');
      return { x509CertificateChain: { certificates: [{ rawBytes: der }] } };
    }
    if (pem.includes('-----BEGIN PUBLIC KEY-----')) {
      return { publicKey: { hint: keyIdOf(createPublicKey(pem)) } };
    }
  } catch (err) {
    throw malformed(`${what} is not a readable certificate or public key`, err);
  }
  throw malformed(`${what} is neither a pem certificate nor a pem public key`);
}

/** v0.2 when the entry carries an inclusion proof; v0.1 (SET only) otherwise. */
function assemble(
  entry: RekorEntry,
  body: EntryBody,
  material: Record<string, unknown>,
  content: Record<string, unknown>,
): Record<string, unknown> {
  return {
    mediaType: entry.inclusionProof ? BUNDLE_V02_MEDIA_TYPE : BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: { ...material, tlogEntries: [tlogEntryJSON(entry, body)] },
    ...content,
  };
}

export function dsseBundle(
  entry: RekorEntry,
  body: EntryBody,
  verifier: unknown,
  envelope: EnvelopeJSON,
): Buffer {
  const material = verificationMaterialJSON(verifier, `entry ${entry.uuid} verifier`);
  const bundle = assemble(entry, body, material, { dsseEnvelope: envelope });
  return Buffer.from(JSON.stringify(bundle), 'utf8');
}

/**
 * A message-signature bundle from a hashedrekord 0.0.1 entry: the signature over an artifact's
 * digest. Not evidence for a policy (no statement), but it lets a caller (and the replay tests)
 * verify such an entry, and its log proofs, with the gate's verifier.
 */
export function hashedRekordBundle(entry: RekorEntry, body: EntryBody): Record<string, unknown> {
  if (body.kind !== 'hashedrekord' || body.apiVersion !== '0.0.1') {
    throw malformed(
      `entry ${entry.uuid} is ${body.kind} ${body.apiVersion}, not hashedrekord 0.0.1`,
    );
  }
  const data = (body.spec.data ?? {}) as Record<string, unknown>;
  const signature = (body.spec.signature ?? {}) as Record<string, unknown>;
  const digest = sha256Field(data.hash, `entry ${entry.uuid} data hash`);
  base64(signature.content, `entry ${entry.uuid} signature`);
  const key = (signature.publicKey ?? {}) as Record<string, unknown>;
  const material = verificationMaterialJSON(key.content, `entry ${entry.uuid} public key`);
  return assemble(entry, body, material, {
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: hex2b64(digest) },
      signature: signature.content,
    },
  });
}
