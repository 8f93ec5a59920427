import type { KeyObject } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  crypto as core,
  EXTENSION_OID_SCT,
  X509SCTExtension,
  type RFC3161Timestamp,
} from '@sigstore/core';
import {
  VerificationError,
  Verifier,
  type SignedEntity,
  type Signer,
  type TrustMaterial,
} from '@sigstore/verify';
import { verifyTLogBody } from '@sigstore/verify/dist/tlog/index.js';
import { LogCheckpoint } from '@sigstore/verify/dist/tlog/checkpoint.js';
import { signatureNames, verifyCheckpointNote, verifyInclusion } from './checkpoint.js';
import {
  parsedChild,
  preCertTBS,
  spkiDigest,
  tsaSigningKey,
  UseLibrary,
  verifyLeafChain,
  type CertAuthority,
  type Cert,
} from './cert-chain.js';

export interface EntityPolicy {
  tlogThreshold: number;
  ctlogThreshold: number;
  /** verified times needed (default 1; 0 only for a key declared transparency: optional) */
  timestampThreshold?: number;
}

/**
 * @sigstore/verify 3.1's Verifier.verify (without a policy: the gate checks identities itself),
 * step for step and error for error: timestamps, signing key, transparency log entries,
 * signature. The certificate chains of the signing certificate and of the timestamp authorities
 * are checked by cert-chain.ts, which keeps what depends only on the trusted root from one bundle
 * to the next (the library redoes all of it for every bundle and every timestamp: most of the
 * cost of a keyless verification). The log entries are checked by the library's own functions.
 *
 * `leaf` is the bundle's signing certificate as cert-chain.ts reads it (leafCert), or null when
 * it could not be read that way; whenever the fast path meets what it does not model, the whole
 * bundle is verified by @sigstore/verify's Verifier instead.
 */
export function verifyEntity(
  entity: SignedEntity,
  material: TrustMaterial,
  policy: EntityPolicy,
  leaf: Cert | null | undefined,
): Signer {
  checkNotInFuture(entity);
  checkDistinctLogs(entity, policy.tlogThreshold);
  checkProofsMatchCheckpoints(entity);
  try {
    if (entity.key.$case === 'certificate' && !leaf) throw new UseLibrary('no leaf');
    return verifyFast(entity, material, policy, leaf ?? undefined);
  } catch (err) {
    if (!(err instanceof UseLibrary)) throw err;
    // The library reads a checkpoint with any trusted log's key, and only under a name its URL
    // contains: each is checked here first with the entry's own log key, whatever its name
    // (checkpoint.ts), and the library is then handed those names as the logs' URLs, so that both
    // paths accept and refuse the same checkpoints.
    const names: string[] = [];
    for (const e of entity.tlogEntries) {
      const envelope = e.inclusionProof?.checkpoint?.envelope;
      if (envelope === undefined) continue;
      verifyCheckpointNote(envelope, ownLog(e, material));
      names.push(...signatureNames(envelope));
    }
    const named = names.length
      ? { ...material, tlogs: material.tlogs.map((t) => ({ ...t, baseURL: names.join(' ') })) }
      : material;
    return new Verifier(named, policy).verify(entity);
  }
}

type LogEntry = SignedEntity['tlogEntries'][number];

/**
 * The logs that may vouch for an entry: those with its log id. @sigstore/verify 3.1 accepts a
 * checkpoint signed by any trusted log, so without this an entry without an inclusion promise
 * (Rekor v2) verified under whatever log id it claimed (found by test/fuzz, issue 12).
 */
function ownLog(entry: LogEntry, material: TrustMaterial): TrustMaterial['tlogs'] {
  return material.tlogs.filter((t) => core.bufferEqual(t.logID, entry.logId.keyId));
}

/**
 * An inclusion proof must be for the tree its checkpoint signs, and an entry without an inclusion
 * promise (whose signed entry timestamp binds the log index) must sit where its proof puts it.
 * @sigstore/verify 3.1 proves inclusion with the checkpoint's size and root and reads neither the
 * proof's treeSize and rootHash nor, then, the entry's logIndex: a changed one verified and a
 * Rekor v2 entry reported a log index the log never signed (found by test/fuzz, issue 12).
 */
function checkProofsMatchCheckpoints(entity: SignedEntity): void {
  for (const e of entity.tlogEntries) {
    const proof = e.inclusionProof;
    if (!proof?.checkpoint) continue;
    const envelope = proof.checkpoint.envelope;
    const note = envelope.slice(0, envelope.indexOf('\n\n') + 1);
    const checkpoint = LogCheckpoint.fromString(note);
    const mismatch = (what: string) =>
      new VerificationError({
        code: 'TLOG_INCLUSION_PROOF_ERROR',
        message: `the inclusion proof of log entry ${String(e.logIndex)} ${what}`,
      });
    if (String(proof.treeSize) !== String(checkpoint.logSize))
      throw mismatch(
        `is for a tree of ${proof.treeSize}, its checkpoint for ${checkpoint.logSize}`,
      );
    if (!core.bufferEqual(Buffer.from(proof.rootHash), checkpoint.logHash))
      throw mismatch('has a root hash other than its checkpoint');
    if (!e.inclusionPromise && String(proof.logIndex) !== String(e.logIndex))
      throw mismatch(`puts it at index ${proof.logIndex}`);
  }
}

const TIMESTAMP_THRESHOLD = 1;

/**
 * A threshold of log entries is met by that many logs: entries of one log (the same entry twice,
 * or the same log id again) count once. @sigstore/verify counts entries, so a bundle carrying its
 * one entry twice met a threshold of 2 (attack corpus, issue 12); sigstore-go refuses duplicates.
 */
function checkDistinctLogs(entity: SignedEntity, threshold: number): void {
  const logs = new Set(entity.tlogEntries.map((e) => Buffer.from(e.logId.keyId).toString('hex')));
  if (threshold > 1 && logs.size < threshold) {
    throw new VerificationError({
      code: 'TLOG_ERROR',
      message: `expected ${threshold} tlog entries from distinct logs, got ${logs.size} (of ${entity.tlogEntries.length} entries)`,
    });
  }
}

/** Clock skew allowed between the log and the gate before an integrated time is "future". */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * A log entry integrated in the future is refused, as sigstore-go and cosign refuse it: no log
 * can have seen the entry yet, so its time is a lie (a log key misused, or a clock wrong), and a
 * key-signed bundle has no certificate validity to catch it (attack corpus, issue 12).
 * @sigstore/verify does not check it; neither did the fast path.
 */
function checkNotInFuture(entity: SignedEntity): void {
  const limit = Date.now() + MAX_FUTURE_SKEW_MS;
  for (const e of entity.tlogEntries) {
    if (Number(e.integratedTime) * 1000 > limit) {
      throw new VerificationError({
        code: 'TLOG_ERROR',
        message: `log entry ${String(e.logIndex)} has an integrated time in the future (${new Date(Number(e.integratedTime) * 1000).toISOString()})`,
      });
    }
  }
}

function verifyFast(
  entity: SignedEntity,
  material: TrustMaterial,
  policy: EntityPolicy,
  leaf: Cert | undefined,
): Signer {
  const timestamps = verifyTimestamps(entity, material, policy.timestampThreshold);
  const signer = verifySigningKey(entity, timestamps, material, policy, leaf);
  let tlogCount = 0;
  for (const entry of entity.tlogEntries) {
    tlogCount++;
    verifyInclusion(entry, ownLog(entry, material));
    verifyTLogBody(entry, entity.signature);
  }
  if (tlogCount < policy.tlogThreshold) {
    throw new VerificationError({
      code: 'TLOG_ERROR',
      message: `expected ${policy.tlogThreshold} tlog entries, got ${tlogCount}`,
    });
  }
  if (!entity.signature.verifySignature(signer.key)) {
    throw new VerificationError({
      code: 'SIGNATURE_ERROR',
      message: 'signature verification failed',
    });
  }
  return signer;
}

interface VerifiedTime {
  type: 'timestamp-authority' | 'transparency-log';
  logID: Buffer;
  timestamp: Date;
}

function verifyTimestamps(
  entity: SignedEntity,
  material: TrustMaterial,
  threshold = TIMESTAMP_THRESHOLD,
): Date[] {
  const timestamps: VerifiedTime[] = [];
  for (const t of entity.timestamps) {
    if (t.$case === 'timestamp-authority') {
      timestamps.push(
        tsaTimestamp(t.timestamp, entity.signature.signature, material.timestampAuthorities),
      );
    } else if (t.tlogEntry.inclusionPromise) {
      // only an entry with an inclusion promise vouches for its integrated time
      timestamps.push({
        type: 'transparency-log',
        logID: t.tlogEntry.logId.keyId,
        timestamp: new Date(Number(t.tlogEntry.integratedTime) * 1000),
      });
    }
  }
  if (containsDupes(timestamps)) {
    throw new VerificationError({ code: 'TIMESTAMP_ERROR', message: 'duplicate timestamp' });
  }
  if (timestamps.length < threshold) {
    throw new VerificationError({
      code: 'TIMESTAMP_ERROR',
      message: `expected ${threshold} timestamps, got ${timestamps.length}`,
    });
  }
  return timestamps.map((t) => t.timestamp);
}

const signingTimes = new WeakMap<RFC3161Timestamp, Date>();

/** RFC3161Timestamp.signingTime, which parses the TSTInfo again at every call, read once. */
export function signingTime(ts: RFC3161Timestamp): Date {
  let time = signingTimes.get(ts);
  if (time === undefined) {
    time = ts.signingTime;
    signingTimes.set(ts, time);
  }
  return new Date(time.getTime());
}

/** getTSATimestamp and verifyRFC3161Timestamp of @sigstore/verify. */
function tsaTimestamp(
  timestamp: RFC3161Timestamp,
  data: Buffer,
  authorities: CertAuthority[],
): VerifiedTime {
  const time = signingTime(timestamp);
  const serialNumber = timestamp.signerSerialNumber;
  const issuer = timestamp.signerIssuer;
  const verified = authorities
    .filter((ca) => ca.validFor.start <= time && ca.validFor.end >= time)
    .filter(
      (ca) =>
        ca.certChain.length > 0 &&
        core.bufferEqual(ca.certChain[0]!.serialNumber, serialNumber) &&
        core.bufferEqual(ca.certChain[0]!.issuer, issuer),
    )
    .some((ca) => {
      try {
        verifyTimestampToken(timestamp, data, tsaSigningKey(ca, time));
        return true;
      } catch (err) {
        if (err instanceof UseLibrary) throw err;
        return false;
      }
    });
  if (!verified) {
    throw new VerificationError({
      code: 'TIMESTAMP_ERROR',
      message: 'timestamp could not be verified',
    });
  }
  return {
    type: 'timestamp-authority',
    logID: timestamp.signerSerialNumber,
    timestamp: signingTime(timestamp),
  };
}

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TSTINFO = '1.2.840.113549.1.9.16.1.4';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

/**
 * RFC3161Timestamp.verify of @sigstore/core: the token is signed data holding a TSTInfo whose
 * message imprint is the digest of `data`, the signed attributes' message digest is the
 * TSTInfo's, and `key` verifies the signature over the signed attributes (as a SET). The library
 * re-encodes the TSTInfo and the signed attributes to DER for the two last checks, which cost
 * twice the signature check; here they are the bytes as parsed when those are DER, which is then
 * the same thing. Otherwise the library checks the token itself. Only whether it throws matters:
 * the caller reports any failure as "timestamp could not be verified".
 */
function verifyTimestampToken(ts: RFC3161Timestamp, data: Buffer, key: KeyObject): void {
  let signed: { tstInfo: Buffer; attrs: Buffer; digest: Buffer } | undefined;
  try {
    const token = ts.root.subs[1]!;
    const signedData = token.subs.find((s) => s.tag.isContextSpecific(0x00))!.subs[0]!;
    const eContent = signedData.subs[2]!.subs[1]!;
    const signerInfo = signedData.subs[signedData.subs.length - 1]!.subs[0]!;
    const attrsAt = signerInfo.subs.findIndex((s) => s.tag.isContextSpecific(0x00));
    const attrs = signerInfo.subs[attrsAt]!;
    const digestAttr = attrs.subs.find(
      (s) => s.subs[0]!.tag.isOID() && s.subs[0]!.toOID() === OID_MESSAGE_DIGEST,
    )!;
    const tstInfo = parsedChild(eContent.subs[0]!, 0);
    const attrBytes = parsedChild(signerInfo, attrsAt);
    if (tstInfo && attrBytes && eContent.subs[0]!.subs[0] === ts.tstInfo.root) {
      signed = { tstInfo, attrs: attrBytes, digest: digestAttr.subs[1]!.subs[0]!.value };
    }
  } catch {
    signed = undefined;
  }
  if (!signed || ts.contentType !== OID_SIGNED_DATA || ts.eContentType !== OID_TSTINFO) {
    ts.verify(data, key);
    return;
  }
  ts.tstInfo.verify(data);
  const digest = core.digest(ts.signerDigestAlgorithm, signed.tstInfo);
  if (!core.bufferEqual(digest, signed.digest))
    throw new Error('signed data does not match tstInfo');
  const attrs = Buffer.from(signed.attrs);
  attrs[0] = 0x31; // signed as a SET, encoded in the token as [0] IMPLICIT
  if (!core.verify(attrs, key, ts.signatureValue, ts.signatureAlgorithm)) {
    throw new Error('signature verification failed');
  }
}

function verifySigningKey(
  entity: SignedEntity,
  timestamps: Date[],
  material: TrustMaterial,
  policy: EntityPolicy,
  leaf: Cert | undefined,
): Signer {
  const { key } = entity;
  if (key.$case === 'public-key') {
    const found = material.publicKey(key.hint);
    for (const timestamp of timestamps) {
      if (!found.validFor(timestamp)) {
        throw new VerificationError({
          code: 'PUBLIC_KEY_ERROR',
          message: `Public key is not valid for timestamp: ${timestamp.toISOString()}`,
        });
      }
    }
    return { key: found.publicKey };
  }
  if (!leaf) throw new UseLibrary('no leaf');
  let path: Cert[] = [];
  for (const timestamp of timestamps) {
    path = verifyLeafChain(timestamp, leaf, material.certificateAuthorities);
  }
  if (path.length < 2) throw new UseLibrary('no issuer');
  const scts = verifySCTs(leaf, path[1]!, material.ctlogs);
  const signer = signerOf(leaf);
  if (containsDupes(scts)) {
    throw new VerificationError({ code: 'CERTIFICATE_ERROR', message: 'duplicate SCT' });
  }
  if (scts.length < policy.ctlogThreshold) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: `expected ${policy.ctlogThreshold} SCTs, got ${scts.length}`,
    });
  }
  return signer;
}

/** verifySCTs of @sigstore/verify, over the precertificate cut from the leaf's own bytes. */
function verifySCTs(leaf: Cert, issuer: Cert, ctlogs: TrustMaterial['ctlogs']): Buffer[] {
  const extensions = leaf.x509.extensions;
  let index = -1;
  let ext: X509SCTExtension | undefined;
  for (let i = 0; i < extensions.length; i++) {
    if (extensions[i]!.subs[0]!.toOID() === EXTENSION_OID_SCT) {
      ext = new X509SCTExtension(extensions[i]!);
      index = i;
      break;
    }
  }
  if (!ext) return [];
  const scts = ext.signedCertificateTimestamps;
  if (scts.length === 0) return [];
  const tbs = preCertTBS(leaf, index);
  const length = Buffer.from([
    (tbs.length >> 16) & 0xff,
    (tbs.length >> 8) & 0xff,
    tbs.length & 0xff,
  ]);
  const preCert = Buffer.concat([spkiDigest(issuer), length, tbs]);
  return scts.map((sct) => {
    const time = sct.datetime;
    const verified = ctlogs
      .filter(
        (log) =>
          (!sct.logID || log.logID.equals(sct.logID)) &&
          log.validFor.start <= time &&
          time <= log.validFor.end,
      )
      .some((log) =>
        core.verify(sctSigned(sct, preCert), log.publicKey, sct.signature, sct.algorithm),
      );
    if (!verified) {
      throw new VerificationError({
        code: 'CERTIFICATE_ERROR',
        message: 'SCT verification failed',
      });
    }
    return sct.logID;
  });
}

type SCT = X509SCTExtension['signedCertificateTimestamps'][number];

/** What an SCT signs (RFC 6962 3.2), as SignedCertificateTimestamp.verify assembles it. */
function sctSigned(sct: SCT, preCert: Buffer): Buffer {
  const ext = sct.extensions.byteLength;
  return Buffer.concat([
    Buffer.from([sct.version & 0xff, 0]), // certificate_timestamp
    sct.timestamp,
    Buffer.from([0, 1]), // precert_entry
    preCert,
    Buffer.from([(ext >> 8) & 0xff, ext & 0xff]),
    sct.extensions,
  ]);
}

const OID_FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_FULCIO_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';

/** getSigner of @sigstore/verify, with the leaf's key already read. */
function signerOf(leaf: Cert): Signer {
  const cert = leaf.x509;
  const v2 = cert.extension(OID_FULCIO_ISSUER_V2);
  const issuer = v2
    ? v2.valueObj.subs?.[0]?.value.toString('ascii')
    : cert.extension(OID_FULCIO_ISSUER_V1)?.value.toString('ascii');
  const oids = cert.extensions.map((ext) => ({
    oid: { id: ext.subs[0]!.toOID().split('.').map(Number) },
    value: ext.subs[ext.subs.length - 1]!.value,
  }));
  return {
    key: leaf.key as Exclude<Cert['key'], Error>,
    identity: { extensions: { issuer }, subjectAlternativeName: cert.subjectAltName, oids },
  };
}

function containsDupes(arr: unknown[]): boolean {
  for (let i = 0; i < arr.length; i++) {
    for (let j = i + 1; j < arr.length; j++) {
      if (isDeepStrictEqual(arr[i], arr[j])) return true;
    }
  }
  return false;
}
