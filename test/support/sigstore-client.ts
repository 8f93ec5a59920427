import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { TransparencyLogEntry } from '@sigstore/bundle';
import { extensionsToOIDs } from './fulcio-oids.js';
import { EXTENSIONS_CLAIM } from './local-fulcio.js';
import type { LocalSigstore } from './sigstore-services.js';

/** Minimal HTTP clients for the local services, speaking the real Fulcio/Rekor/TSA wire formats. */

async function post(url: string, body: unknown): Promise<Response> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200 && res.status !== 201)
    throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  return res;
}

export interface KeylessIdentity {
  /** certificate SAN (always written as a URI GeneralName by the mock CA, whatever it looks like) */
  san: string;
  /** OIDC issuer; written to the v1 (.1.1) and v2 (.1.8) issuer extensions */
  issuer: string;
  /** further Fulcio extensions by FulcioExtensionName or by dotted OID, as UTF8String values */
  extensions?: Record<string, string>;
}

/** Requests a Fulcio certificate for `key`; returns the leaf certificate as DER. */
export async function requestCertificate(
  svc: LocalSigstore,
  key: { publicKey: KeyObject; privateKey: KeyObject },
  identity: KeylessIdentity,
): Promise<Buffer> {
  const jwtPart = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = {
    iss: identity.issuer,
    sub: identity.san,
    aud: 'sigstore',
    [EXTENSIONS_CLAIM]: extensionsToOIDs(identity.extensions),
  };
  // Unsigned token: the local Fulcio takes the claims at face value (it is a test double).
  const token = `${jwtPart({ alg: 'none', typ: 'JWT' })}.${jwtPart(claims)}.`;
  const res = await post(`${svc.fulcioURL}/api/v2/signingCert`, {
    credentials: { oidcIdentityToken: token },
    publicKeyRequest: {
      publicKey: {
        algorithm: 'ECDSA',
        content: key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      },
      proofOfPossession: cryptoSign('sha256', Buffer.from(identity.san), key.privateKey).toString(
        'base64',
      ),
    },
  });
  const json = (await res.json()) as {
    signedCertificateEmbeddedSct: { chain: { certificates: string[] } };
  };
  const leaf = json.signedCertificateEmbeddedSct.chain.certificates[0] ?? '';
  return Buffer.from(leaf.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
}

interface RekorV1Entry {
  body: string;
  integratedTime: number;
  logID: string;
  logIndex: number;
  verification: {
    signedEntryTimestamp: string;
    inclusionProof: {
      logIndex: number;
      treeSize: number;
      rootHash: string;
      hashes: string[];
      checkpoint: string;
    };
  };
}

/**
 * Submits a proposed Rekor v1 entry and converts the response to a bundle TransparencyLogEntry,
 * as sigstore-js does. `withProof: false` leaves out the inclusion proof (bundle v0.1 shape).
 */
export async function createTLogEntry(
  svc: LocalSigstore,
  proposed: { kind: string; apiVersion: string },
  withProof: boolean,
): Promise<TransparencyLogEntry> {
  const res = await post(`${svc.rekorURL}/api/v1/log/entries`, proposed);
  const json = (await res.json()) as Record<string, RekorV1Entry>;
  const entry = Object.values(json)[0];
  if (!entry) throw new Error('empty Rekor response');
  const proof = entry.verification.inclusionProof;
  return {
    logIndex: String(entry.logIndex),
    logId: { keyId: Buffer.from(entry.logID, 'hex') },
    kindVersion: { kind: proposed.kind, version: proposed.apiVersion },
    integratedTime: String(entry.integratedTime),
    inclusionPromise: {
      signedEntryTimestamp: Buffer.from(entry.verification.signedEntryTimestamp, 'base64'),
    },
    inclusionProof: withProof
      ? {
          logIndex: String(proof.logIndex),
          rootHash: Buffer.from(proof.rootHash, 'hex'),
          treeSize: String(proof.treeSize),
          hashes: proof.hashes.map((h) => Buffer.from(h, 'hex')),
          checkpoint: { envelope: proof.checkpoint },
        }
      : undefined,
    canonicalizedBody: Buffer.from(entry.body, 'base64'),
  };
}

/** RFC 3161 timestamp over the signature bytes (what Sigstore timestamps), DER. */
export async function requestTimestamp(svc: LocalSigstore, signature: Buffer): Promise<Buffer> {
  const res = await post(`${svc.tsaURL}/api/v1/timestamp`, {
    artifactHash: createHash('sha256').update(signature).digest('base64'),
    hashAlgorithm: 'sha256',
  });
  return Buffer.from(await res.arrayBuffer());
}
