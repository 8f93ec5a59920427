import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import {
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
  bundleToJSON,
  envelopeToJSON,
  toDSSEBundle,
  toMessageSignatureBundle,
  type Bundle,
  type SerializedBundle,
} from '@sigstore/bundle';
import { PublicKeyDetails } from '@sigstore/protobuf-specs';
import { toPEM } from './local-fulcio.js';
import { preAuthEncoding } from './local-rekor.js';
import {
  createTLogEntry,
  requestCertificate,
  requestTimestamp,
  type KeylessIdentity,
} from './sigstore-client.js';
import type { LocalSigstore } from './sigstore-services.js';

export type { KeylessIdentity } from './sigstore-client.js';
export type BundleVersion = '0.1' | '0.2' | '0.3';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const DEFAULT_IDENTITY: KeylessIdentity = {
  san: 'https://github.com/gate-test/app/.github/workflows/release.yml@refs/heads/main',
  issuer: 'https://token.actions.githubusercontent.com',
};

const MEDIA_TYPES: Record<BundleVersion, string> = {
  '0.1': BUNDLE_V01_MEDIA_TYPE,
  '0.2': BUNDLE_V02_MEDIA_TYPE,
  '0.3': BUNDLE_V03_MEDIA_TYPE,
};

export interface MintOptions {
  version: BundleVersion;
  signer: 'keyless' | 'key';
  /** keyless only; default DEFAULT_IDENTITY */
  identity?: KeylessIdentity;
  /** log to Rekor v1 (default true): SET always; inclusion proof + checkpoint for v0.2/v0.3 */
  tlog?: boolean;
  /** add an RFC 3161 timestamp from the local TSA (default false) */
  tsa?: boolean;
  /** sign with this P-256 key instead of a fresh one (e.g. one trusted key for many bundles) */
  privateKey?: KeyObject;
  /** key signer: the bundle's publicKey.hint; default hex SHA-256 of the DER SPKI; '' for none */
  keyHint?: string;
}
export interface MintMessageOptions extends MintOptions {
  artifact: Buffer;
}
export interface MintDSSEOptions extends MintOptions {
  /** an in-toto statement (JSON-serialized) or the exact payload bytes */
  statement: object | Buffer;
  /** default application/vnd.in-toto+json */
  payloadType?: string;
}

export interface Minted {
  /** the bundle in JSON form, as written to a .sigstore.json file */
  bundle: SerializedBundle;
  /** key signer: PEM SPKI of the signing key */
  publicKeyPem?: string;
  /** key signer: the hint written to the bundle */
  keyHint?: string;
  /** keyless: the Fulcio leaf certificate, PEM */
  certificatePem?: string;
  /** the signing key, to re-sign tampered content in negative tests */
  privateKey: KeyObject;
  /** DSSE: the exact payload bytes that were signed */
  payload?: Buffer;
}

type Content =
  { kind: 'message'; artifact: Buffer } | { kind: 'dsse'; payload: Buffer; payloadType: string };

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const pemB64 = (pem: string): string => Buffer.from(pem, 'utf8').toString('base64');

async function mint(svc: LocalSigstore, opts: MintOptions, content: Content): Promise<Minted> {
  const privateKey =
    opts.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const keyless = opts.signer === 'keyless';

  // Certificate first, then sign: the signature must fall inside the certificate's validity.
  const cert = keyless
    ? await requestCertificate(svc, { publicKey, privateKey }, opts.identity ?? DEFAULT_IDENTITY)
    : undefined;
  const certificatePem = cert ? toPEM(cert) : undefined;
  const keyHint = keyless ? undefined : (opts.keyHint ?? sha256(spki).toString('hex'));
  const material = { certificate: cert, keyHint, certificateChain: opts.version !== '0.3' };

  let bundle: Bundle;
  let signature: Buffer;
  let proposed: { kind: string; apiVersion: string; spec: object };
  const verifier = pemB64(certificatePem ?? publicKeyPem);
  if (content.kind === 'message') {
    const digest = sha256(content.artifact);
    signature = sign('sha256', content.artifact, privateKey);
    bundle = toMessageSignatureBundle({ digest, signature, ...material });
    proposed = {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: digest.toString('hex') } },
        signature: { content: signature.toString('base64'), publicKey: { content: verifier } },
      },
    };
  } else {
    const pae = preAuthEncoding(content.payloadType, content.payload);
    signature = sign('sha256', pae, privateKey);
    bundle = toDSSEBundle({
      artifact: content.payload,
      artifactType: content.payloadType,
      signature,
      ...material,
    });
    if (bundle.content.$case !== 'dsseEnvelope') throw new Error('unreachable');
    const envelope = JSON.stringify(envelopeToJSON(bundle.content.dsseEnvelope));
    proposed = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: { proposedContent: { envelope, verifiers: [verifier] } },
    };
  }
  bundle.mediaType = MEDIA_TYPES[opts.version];
  if (opts.tlog ?? true) {
    const entry = await createTLogEntry(svc, proposed, opts.version !== '0.1');
    bundle.verificationMaterial.tlogEntries = [entry];
  }
  // Without a timestamp leave the field out, as the sigstore-js bundles under test/fixtures do (not `{}`).
  bundle.verificationMaterial.timestampVerificationData = opts.tsa
    ? { rfc3161Timestamps: [{ signedTimestamp: await requestTimestamp(svc, signature) }] }
    : undefined;
  return {
    bundle: bundleToJSON(bundle),
    ...(keyless ? { certificatePem } : { publicKeyPem, keyHint }),
    privateKey,
    ...(content.kind === 'dsse' ? { payload: content.payload } : {}),
  };
}

/** A message-signature bundle over `artifact` (Rekor kind hashedrekord 0.0.1). */
export function mintMessageBundle(svc: LocalSigstore, opts: MintMessageOptions): Promise<Minted> {
  return mint(svc, opts, { kind: 'message', artifact: opts.artifact });
}

/** A DSSE bundle over `statement` (Rekor kind dsse 0.0.1). */
export function mintDSSEBundle(svc: LocalSigstore, opts: MintDSSEOptions): Promise<Minted> {
  const payload = Buffer.isBuffer(opts.statement)
    ? opts.statement
    : Buffer.from(JSON.stringify(opts.statement), 'utf8');
  const payloadType = opts.payloadType ?? IN_TOTO_PAYLOAD_TYPE;
  return mint(svc, opts, { kind: 'dsse', payload, payloadType });
}

/** The `keys` argument of @sigstore/verify's toTrustMaterial for a key-signed bundle. */
export function verifierKeys(
  minted: Minted,
): Record<string, { rawBytes: Buffer; keyDetails: PublicKeyDetails }> {
  if (minted.keyHint === undefined || !minted.publicKeyPem) return {};
  const rawBytes = createPublicKey(minted.publicKeyPem).export({ format: 'der', type: 'spki' });
  return { [minted.keyHint]: { rawBytes, keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256 } };
}
