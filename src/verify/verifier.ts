import crypto from 'node:crypto';
import type { TransparencyLogEntry } from '@sigstore/bundle';
import { toSignedEntity, Verifier, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { GateError, VerifyError, type GateErrorCode } from '../errors.js';
import { parseBundle, type ParsedBundle } from './bundle.js';
import { dsseContent, messageContent } from './content.js';
import {
  checkIdentity,
  compileIdentityRules,
  keylessSigner,
  type CompiledIdentityRule,
} from './identity.js';
import type { Trust } from './trust.js';
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
 * rules and a stricter trusted root. Throws a coded error; never returns a partial result.
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
  const verifier = new Verifier(
    { ...opts.trust.material, publicKey: keyFinder(opts.keys ?? []) } as TrustMaterial,
    { tlogThreshold: opts.tlogThreshold ?? 1, ctlogThreshold: keyed ? 0 : 1 },
  );
  const libSigner = runVerifier(() => verifier.verify(entity));
  const signer: Signer = keyed
    ? { kind: 'key', keyId: keyId(entity, opts.keys ?? []) }
    : keylessSigner(libSigner);
  if (!keyed && opts.identities !== 'any') checkIdentity(signer, compiled(opts.identities!));
  return describe(parsed, entity, signer);
}

function signedEntity(parsed: ParsedBundle, artifact: ArtifactInput | undefined): SignedEntity {
  const { bundle } = parsed;
  let entity: SignedEntity;
  try {
    entity = toSignedEntity(bundle, artifact && 'bytes' in artifact ? artifact.bytes : undefined);
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

function keyFinder(keys: TrustedKey[]): TrustMaterial['publicKey'] {
  return (hint: string) => {
    const key = keys.find((k) => k.hint === undefined || k.hint === hint);
    if (!key)
      throw new VerifyError(
        'PUBLIC_KEY_INVALID',
        `no trusted key for hint ${JSON.stringify(hint)}`,
      );
    let publicKey: crypto.KeyObject;
    try {
      publicKey = crypto.createPublicKey(key.pem);
    } catch (err) {
      throw new GateError('PUBLIC_KEY_INVALID', 'trusted key is not a pem public key', {
        cause: err,
      });
    }
    return { publicKey, validFor: () => true };
  };
}

function keyId(entity: SignedEntity, keys: TrustedKey[]): string {
  const hint = entity.key.$case === 'public-key' ? entity.key.hint : '';
  if (hint) return hint;
  const der = crypto.createPublicKey(keys[0]!.pem).export({ format: 'der', type: 'spki' });
  return crypto.createHash('sha256').update(der).digest('hex');
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

function describe(parsed: ParsedBundle, entity: SignedEntity, signer: Signer): VerifiedBundle {
  const { bundle } = parsed;
  const result: VerifiedBundle = {
    contentType: bundle.content.$case === 'dsseEnvelope' ? 'dsse' : 'message',
    signer,
    logEntries: entity.tlogEntries.map(logEntryRef),
    timestamps: timestamps(entity),
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
  const seconds = Number(e.integratedTime);
  return {
    logIndex: String(e.logIndex),
    logId: Buffer.from(e.logId.keyId).toString('base64'),
    ...(seconds > 0 ? { integratedTime: new Date(seconds * 1000).toISOString() } : {}),
    kind: e.kindVersion.kind,
    version: e.kindVersion.version,
  };
}

function timestamps(entity: SignedEntity): VerifiedTimestamp[] {
  return entity.timestamps.flatMap((t): VerifiedTimestamp[] => {
    if (t.$case === 'timestamp-authority') {
      return [{ source: 'timestamp-authority', time: t.timestamp.signingTime.toISOString() }];
    }
    const seconds = Number(t.tlogEntry.integratedTime);
    return seconds > 0
      ? [{ source: 'transparency-log', time: new Date(seconds * 1000).toISOString() }]
      : [];
  });
}

function lower(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 0 ? m[0]!.toLowerCase() + m.slice(1) : m;
}
