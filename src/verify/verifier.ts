import type { TransparencyLogEntry } from '@sigstore/bundle';
import type { X509Certificate } from '@sigstore/core';
import {
  toSignedEntity,
  type Signer as LibSigner,
  type SignedEntity,
  type TrustMaterial,
} from '@sigstore/verify';
import { GateError, VerifyError, type GateErrorCode } from '../errors.js';
import { clip } from '../util/input.js';
import { parseBundle, type ParsedBundle } from './bundle.js';
import { leafCert, signedBy, trustedCert, UseLibrary, type Cert } from './cert-chain.js';
import { dsseContent, messageContent } from './content.js';
import { signingTime, verifyEntity } from './entity-verifier.js';
import {
  checkIdentity,
  compileIdentityRules,
  keylessSigner,
  type CompiledIdentityRule,
} from './identity.js';
import { candidateKeys, parseTrustedKey, type ParsedKey } from './key-id.js';
import { firstRootThatVerifies, issuingRoots, keylessPolicy } from './root-policy.js';
import type { Trust, TrustRoot } from './trust.js';
import type {
  ArtifactInput,
  IdentityRule,
  LogEntryRef,
  Signer,
  TrustedKey,
  VerifiedBundle,
  VerifiedTimestamp,
} from './types.js';

export interface VerifyBundleOptions {
  trust: Trust;
  /** required for message signatures; DSSE bundles are checked against their subjects instead */
  artifact?: ArtifactInput;
  /**
   * keyless: the signer must satisfy at least one (compile once with compileIdentityRules), or
   * 'any' to accept any signer the trusted CA certified and leave the identity to the policy
   * (the signer is always reported).
   */
  identities?: IdentityRule[] | CompiledIdentityRule[] | 'any';
  /** key-based bundles: the keys trusted to sign */
  keys?: TrustedKey[];
  /** minimum transparency log entries (default 1) */
  tlogThreshold?: number;
}

/**
 * Verifies one Sigstore bundle: shape, timestamps, signing key (Fulcio chain and SCT, or a
 * trusted key), transparency log entries, signature, signer identity. Built on @sigstore/verify;
 * the gate adds strict parsing, digest-only verification, Rekor v2 DSSE entries, anchored identity
 * rules and a stricter trusted root. Its steps are @sigstore/verify's, run by entity-verifier.ts
 * so that a trusted root's certificates are checked once rather than for every bundle. Throws a
 * coded error; never returns a partial result.
 */
export function verifyBundle(
  input: Buffer | string | unknown,
  opts: VerifyBundleOptions,
): VerifiedBundle {
  const parsed = parseBundle(input);
  const entity = signedEntity(parsed, opts.artifact);
  const keyed = entity.key.$case === 'public-key';
  if (keyed && !opts.keys?.length) {
    throw new VerifyError(
      'PUBLIC_KEY_INVALID',
      'bundle is signed with a key but no trusted key was given',
    );
  }
  if (!keyed && (opts.identities === undefined || opts.identities.length === 0)) {
    throw new VerifyError(
      'IDENTITY_MISMATCH',
      'bundle is signed keyless but no identity was given to check',
    );
  }
  const { root, value } = keyed
    ? firstRootThatVerifies(opts.trust.roots, (r) => verifyWithKeys(entity, opts, r))
    : verifyKeyless(entity, opts, signingCert(parsed, entity));
  const signer: Signer = keyed
    ? { kind: 'key', keyId: (value as ParsedKey).keyId }
    : keylessSigner(value as LibSigner);
  if (!keyed && opts.identities !== 'any') checkIdentity(signer, compiled(opts.identities!));
  return describe(parsed, entity, signer, root);
}

function signedEntity(parsed: ParsedBundle, artifact: ArtifactInput | undefined): SignedEntity {
  const { bundle } = parsed;
  let entity: SignedEntity;
  try {
    entity = withoutStackTraces(() =>
      toSignedEntity(bundle, artifact && 'bytes' in artifact ? artifact.bytes : undefined),
    );
  } catch (err) {
    throw new VerifyError('BUNDLE_INVALID', `bundle cannot be read: ${lower(err)}`, { cause: err });
  }
  const content = bundle.content;
  if (content.$case === 'messageSignature') {
    if (!artifact)
      throw new GateError('USAGE_ERROR', 'a message signature needs the artifact or its digest');
    entity.signature = messageContent(content.messageSignature, artifact);
  } else {
    entity.signature = dsseContent(content.dsseEnvelope, entity.tlogEntries);
  }
  return entity;
}

/**
 * The signing certificate read once for every root and timestamp that checks it (cert-chain.ts),
 * from the bytes it was parsed from; null when only @sigstore/verify can check it.
 */
function signingCert(parsed: ParsedBundle, entity: SignedEntity): Cert | null | undefined {
  if (entity.key.$case !== 'certificate') return undefined;
  const vm = parsed.bundle.verificationMaterial.content;
  const raw =
    vm.$case === 'certificate'
      ? vm.certificate.rawBytes
      : vm.$case === 'x509CertificateChain'
        ? vm.x509CertificateChain.certificates[0]?.rawBytes
        : undefined;
  if (!raw) return null;
  try {
    return leafCert(entity.key.certificate, Buffer.from(raw));
  } catch (err) {
    if (err instanceof UseLibrary) return null;
    throw err;
  }
}

/**
 * @sigstore/core's ASN.1 parser tries every OCTET STRING as nested DER and throws when it is not
 * (a hash, a URL), several times per certificate and timestamp; without stack traces those
 * throws cost a tenth of what they do, 150 us of a bundle. Only for `fn`, which is synchronous.
 */
function withoutStackTraces<T>(fn: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A Fulcio certificate is verified against the roots whose CAs issued it, each by its rules. */
function verifyKeyless(
  entity: SignedEntity,
  opts: VerifyBundleOptions,
  cert: Cert | null | undefined,
) {
  const leaf = entity.key.$case === 'certificate' ? entity.key.certificate : undefined;
  const roots = leaf
    ? issuingRoots(opts.trust.roots, leaf, issuedBy(leaf, cert))
    : opts.trust.roots;
  return firstRootThatVerifies(roots, (root) => verifyKeylessOn(entity, opts, root, cert));
}

/** X509Certificate.verify(issuer) of the leaf, the signature checked once per issuer key. */
function issuedBy(leaf: X509Certificate, cert: Cert | null | undefined) {
  return (issuer: X509Certificate): boolean => {
    const trusted = cert ? trustedCert(issuer) : null;
    return cert && trusted ? signedBy(cert, trusted) : leaf.verify(issuer);
  };
}

function verifyKeylessOn(
  entity: SignedEntity,
  opts: VerifyBundleOptions,
  root: TrustRoot,
  cert: Cert | null | undefined,
) {
  const policy = keylessPolicy(root, opts.tlogThreshold);
  if (policy.timestampAuthorityOnly) checkTimestampedOnly(entity, root);
  const noKeys: TrustMaterial['publicKey'] = () => {
    throw new VerifyError('PUBLIC_KEY_INVALID', 'a keyless bundle names no key');
  };
  const material = { ...root.material, publicKey: noKeys } as TrustMaterial;
  return runVerifier(() =>
    verifyEntity(
      entity,
      material,
      { tlogThreshold: policy.tlogThreshold, ctlogThreshold: policy.ctlogThreshold },
      cert,
    ),
  );
}

/**
 * Under a root without logs the signing time must come from its timestamp authority. A log entry
 * there could not be checked (the root has no log key), and @sigstore/verify would count its
 * unverified integrated time as a timestamp before failing on it: refuse it up front.
 */
function checkTimestampedOnly(entity: SignedEntity, root: TrustRoot): void {
  if (entity.tlogEntries.length > 0) {
    throw new VerifyError(
      'TLOG_INVALID',
      `trusted root ${root.name} has no transparency log to check the bundle's log entry against`,
    );
  }
  if (!entity.timestamps.some((t) => t.$case === 'timestamp-authority')) {
    throw new VerifyError(
      'TIMESTAMP_INVALID',
      `trusted root ${root.name} has no transparency log: the bundle needs an rfc 3161 timestamp`,
    );
  }
}

/**
 * A key-signed bundle's signer is the trusted key its signature verifies with. The bundle's
 * publicKey.hint is not signed: it only narrows which keys are tried (key-id.ts), so a signature
 * made with one key and labelled with another's hint is reported as the key that made it.
 */
function verifyWithKeys(
  entity: SignedEntity,
  opts: VerifyBundleOptions,
  root: TrustRoot,
): ParsedKey {
  const hint = entity.key.$case === 'public-key' ? entity.key.hint : undefined;
  const candidates = candidateKeys(hint || undefined, (opts.keys ?? []).map(parseTrustedKey));
  for (const key of candidates) {
    // The signer is the key its signature verifies with; only then is the bundle held to that
    // key's rules (a log entry or not), so one key's rules never answer for another's signature.
    if (!signatureVerifies(entity, key)) continue;
    const material = { publicKey: () => ({ publicKey: key.publicKey, validFor: () => true }) };
    // A trusted key is certified by no root, so no root's lack of logs can excuse it from one.
    const trusted = { ...root.material, ...material } as TrustMaterial;
    // A key declared transparency: optional may sign without any log entry or timestamp (an
    // entry or a timestamp it has is still checked); every other key needs its log entry.
    const untimed = key.transparencyOptional === true;
    const policy = {
      tlogThreshold: untimed ? 0 : (opts.tlogThreshold ?? 1),
      ctlogThreshold: 0,
      ...(untimed ? { timestampThreshold: 0 } : {}),
    };
    runVerifier(() => verifyEntity(entity, trusted, policy, undefined));
    return key;
  }
  throw new VerifyError(
    'SIGNATURE_INVALID',
    `the signature verifies with none of the trusted keys (${candidates.length} tried)`,
  );
}

function signatureVerifies(entity: SignedEntity, key: ParsedKey): boolean {
  try {
    return entity.signature.verifySignature(key.publicKey);
  } catch {
    return false; // a key of another type or curve
  }
}

function compiled(rules: IdentityRule[] | CompiledIdentityRule[]): CompiledIdentityRule[] {
  return rules.length > 0 && 'matchSAN' in rules[0]!
    ? (rules as CompiledIdentityRule[])
    : compileIdentityRules(rules as IdentityRule[]);
}

const LIB_CODES: Record<string, GateErrorCode> = {
  SIGNATURE_ERROR: 'SIGNATURE_INVALID',
  CERTIFICATE_ERROR: 'CERTIFICATE_INVALID',
  TLOG_BODY_ERROR: 'TLOG_BODY_MISMATCH',
  TLOG_MISSING_INCLUSION_ERROR: 'TLOG_INCLUSION_MISSING',
  TLOG_ERROR: 'TLOG_INVALID',
  TLOG_INCLUSION_PROOF_ERROR: 'TLOG_INVALID',
  TLOG_INCLUSION_PROMISE_ERROR: 'TLOG_INVALID',
  TIMESTAMP_ERROR: 'TIMESTAMP_INVALID',
  PUBLIC_KEY_ERROR: 'PUBLIC_KEY_INVALID',
  UNTRUSTED_SIGNER_ERROR: 'IDENTITY_MISMATCH',
};

/** @sigstore/verify throws its own errors (and sometimes plain TypeErrors): give each a code. */
function runVerifier<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof GateError) throw err;
    const libCode = (err as { code?: string }).code ?? '';
    const code = LIB_CODES[libCode] ?? 'VERIFICATION_FAILED';
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause ? `: ${lower(cause)}` : '';
    throw new VerifyError(code, `${lower(err)}${detail}`, { cause: err });
  }
}

function describe(
  parsed: ParsedBundle,
  entity: SignedEntity,
  signer: Signer,
  root: TrustRoot,
): VerifiedBundle {
  const { bundle } = parsed;
  const times = timestamps(entity);
  const result: VerifiedBundle = {
    contentType: bundle.content.$case === 'dsseEnvelope' ? 'dsse' : 'message',
    signer,
    logEntries: entity.tlogEntries.map(logEntryRef),
    timestamps: times,
    trustRoot: { name: root.name, digest: root.digest },
    // A log's integrated time is preferred when there is one: it is what the log vouches for.
    timeSource:
      times.length === 0
        ? 'none'
        : times.some((t) => t.source === 'transparency-log')
          ? 'transparency-log'
          : 'timestamp-authority',
    // @sigstore/verify checks a proof when there is one and the promise otherwise (both when
    // both): an entry without a proof is only as good as its promise.
    ...(entity.tlogEntries.length > 0
      ? {
          tlog: entity.tlogEntries.every((e) => e.inclusionProof)
            ? ('inclusion-proof' as const)
            : ('inclusion-promise' as const),
        }
      : {}),
    bundleDigest: parsed.digest,
    mediaType: parsed.mediaType,
  };
  if (bundle.content.$case === 'dsseEnvelope') {
    result.payloadType = bundle.content.dsseEnvelope.payloadType;
    result.payload = Buffer.from(bundle.content.dsseEnvelope.payload);
  }
  return result;
}

function logEntryRef(e: TransparencyLogEntry): LogEntryRef {
  // Only an inclusion promise signs the integrated time: one in an entry without (Rekor v2) is
  // not reported, nor counted as a time (found by test/fuzz, issue 12).
  const seconds = e.inclusionPromise ? Number(e.integratedTime) : 0;
  return {
    logIndex: String(e.logIndex),
    logId: Buffer.from(e.logId.keyId).toString('base64'),
    ...(seconds > 0 ? { integratedTime: new Date(seconds * 1000).toISOString() } : {}),
    kind: e.kindVersion.kind,
    version: e.kindVersion.version,
    ...checkpointOrigin(e),
  };
}

/** The first line of the verified checkpoint's note: the name the log signed it under. */
function checkpointOrigin(e: TransparencyLogEntry): { checkpointOrigin?: string } {
  const envelope = e.inclusionProof?.checkpoint?.envelope;
  const origin = envelope?.slice(0, Math.max(0, envelope.indexOf('\n')));
  return origin ? { checkpointOrigin: clip(origin, 200) } : {};
}

function timestamps(entity: SignedEntity): VerifiedTimestamp[] {
  return entity.timestamps.flatMap((t): VerifiedTimestamp[] => {
    if (t.$case === 'timestamp-authority') {
      return [{ source: 'timestamp-authority', time: signingTime(t.timestamp).toISOString() }];
    }
    const seconds = t.tlogEntry.inclusionPromise ? Number(t.tlogEntry.integratedTime) : 0;
    return seconds > 0
      ? [{ source: 'transparency-log', time: new Date(seconds * 1000).toISOString() }]
      : [];
  });
}

function lower(err: unknown): string {
  // One line: the library's messages quote the bundle ("expected: <kind>/<version>"), and a
  // newline there would break a coded message in two (found by test/fuzz, issue 12).
  const m = clip(err instanceof Error ? err.message : String(err), 1000);
  return m.length > 0 ? m[0]!.toLowerCase() + m.slice(1) : m;
}
