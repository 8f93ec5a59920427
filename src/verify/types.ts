import type { GateErrorCode } from '../errors.js';

import type { ArtifactDigest } from '../subject.js';

export type { ArtifactDigest } from '../subject.js';

/** What the signature must cover: the artifact's bytes, or only its digest. */
export type ArtifactInput = { bytes: Buffer } | { digest: ArtifactDigest };

/**
 * A keyless identity the signer's Fulcio certificate must carry. `san` (exact) or `sanRegExp`
 * (always anchored: ^(?:...)$ is added) and an exact `issuer`. `extensions` are optional exact
 * matches on Fulcio's certificate extensions, keyed by the names in FULCIO_EXTENSIONS.
 */
export interface IdentityRule {
  san?: string;
  sanRegExp?: string;
  issuer: string;
  extensions?: Partial<Record<FulcioExtensionName, string>>;
}

/** A trusted public key for key-based (non-keyless) bundles. */
export interface TrustedKey {
  /** PEM SubjectPublicKeyInfo */
  pem: string;
  /**
   * a name a bundle's publicKey.hint may use for it (besides its key ids): hints are unsigned,
   * so they only order which keys are tried; the signer is always the key that verifies
   */
  hint?: string;
  /**
   * `optional`: a bundle signed by this key verifies without a log entry or a timestamp (cosign
   * --tlog-upload=false, as cosign accepts with --insecure-ignore-tlog). Such evidence has no
   * trusted time: it says so (timeSource `none`), and what needs a time refuses it. Explicit
   * per key, never global. Default `required`.
   */
  transparency?: 'required' | 'optional';
}

export type FulcioExtensionName =
  | 'issuer'
  | 'buildSignerURI'
  | 'buildSignerDigest'
  | 'runnerEnvironment'
  | 'sourceRepositoryURI'
  | 'sourceRepositoryDigest'
  | 'sourceRepositoryRef'
  | 'sourceRepositoryIdentifier'
  | 'sourceRepositoryOwnerURI'
  | 'sourceRepositoryOwnerIdentifier'
  | 'buildConfigURI'
  | 'buildConfigDigest'
  | 'buildTrigger'
  | 'runInvocationURI'
  | 'sourceRepositoryVisibilityAtSigning';

export interface Signer {
  kind: 'keyless' | 'key';
  /** keyless: the certificate's SAN (email, URI, ...) */
  identity?: string;
  /** keyless: the OIDC issuer from the certificate */
  issuer?: string;
  /** keyless: every Fulcio extension present, by name */
  extensions?: Partial<Record<FulcioExtensionName, string>>;
  /** key: the trusted key that verified, as cosign names it: base64 SHA-256 of its DER SPKI */
  keyId?: string;
}

export interface LogEntryRef {
  logIndex: string;
  /** base64 log id (SHA-256 of the log's key) */
  logId: string;
  /** RFC 3339; absent for Rekor v2 entries, which carry no integrated time */
  integratedTime?: string;
  kind: string;
  version: string;
  /**
   * the origin line of the checkpoint its inclusion proof was verified under (a private Rekor's
   * `--rekor_server.hostname`, which need not be in the log's URL)
   */
  checkpointOrigin?: string;
}

export type TlogCheck = 'inclusion-proof' | 'inclusion-promise';

export interface VerifiedTimestamp {
  source: 'transparency-log' | 'timestamp-authority';
  time: string;
}

export interface VerifiedBundle {
  /** 'message' for a message signature, 'dsse' for an envelope */
  contentType: 'message' | 'dsse';
  signer: Signer;
  logEntries: LogEntryRef[];
  timestamps: VerifiedTimestamp[];
  /** the trusted root whose authorities certified the bundle (a bare DSSE envelope has none) */
  trustRoot?: { name: string; digest: string };
  /**
   * the kind of time the signing certificate (or key) was checked at; `none` for a key-signed
   * bundle without log entry or timestamp (a key declared transparency: optional)
   */
  timeSource?: VerifiedTimestamp['source'] | 'none';
  /**
   * how the log entries were checked (absent without one): `inclusion-proof` when each carries a
   * Merkle inclusion proof to a signed checkpoint, `inclusion-promise` when one rests on the log's
   * signed entry timestamp alone (a promise to include the entry, not a proof that it did)
   */
  tlog?: TlogCheck;
  /** sha256 hex of the bundle's bytes as given */
  bundleDigest: string;
  mediaType: string;
  /** DSSE only */
  payloadType?: string;
  payload?: Buffer;
}

export interface InTotoSubject {
  name?: string;
  uri?: string;
  digest: Record<string, string>;
  [k: string]: unknown;
}

export interface InTotoStatement {
  _type: string;
  subject: InTotoSubject[];
  predicateType: string;
  predicate?: unknown;
  [k: string]: unknown;
}

export interface VerifiedAttestation extends VerifiedBundle {
  statement: InTotoStatement;
  predicateType: string;
  predicate: unknown;
  subjects: InTotoSubject[];
  /** the subject that matched the requested digest */
  matchedSubject: InTotoSubject;
  /**
   * Set when the statement is about a platform manifest of the image index asked about:
   * `matchedSubject` then names the index, this the manifest the statement names.
   */
  platformManifest?: { digest: string; platform?: string };
}

export interface Rejection {
  code: GateErrorCode;
  message: string;
}
