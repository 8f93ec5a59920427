import { createHash } from 'node:crypto';
import { GateError } from '../errors.js';
import { isPlainObject } from '../util/input.js';
import type { Evidence } from './types.js';
import { dsseBundle, type EnvelopeJSON } from './rekor-bundle.js';
import { base64, malformed, sha256Field, type EntryBody, type RekorEntry } from './rekor-entry.js';

/**
 * The content of an attestation entry. The log commits only to hashes and signatures; the
 * statement itself comes from the entry's attestation data (intoto) or from an envelope another
 * source found (dsse always, intoto when the log did not store the statement). Either way it is
 * bound to the entry here by the payload hash and the signature, and the verifier checks both
 * again against the body it proves was logged.
 */

/** Envelopes found by other sources, by sha256 hex of their payload. */
export type EnvelopeIndex = Map<string, EnvelopeJSON[]>;

export function indexEnvelopes(found: readonly Evidence[]): EnvelopeIndex {
  const index: EnvelopeIndex = new Map();
  for (const ev of found) {
    const env = envelopeOf(ev);
    if (!env) continue;
    const key = createHash('sha256').update(Buffer.from(env.payload, 'base64')).digest('hex');
    index.set(key, [...(index.get(key) ?? []), env]);
  }
  return index;
}

/** The DSSE envelope inside a bundle or a bare envelope; anything unreadable is skipped here
 * because the source that found it reports it. */
function envelopeOf(ev: Evidence): EnvelopeJSON | undefined {
  let json: unknown;
  try {
    json = JSON.parse(ev.bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const env = ev.kind === 'bundle' && isPlainObject(json) ? json.dsseEnvelope : json;
  if (!isPlainObject(env) || typeof env.payload !== 'string') return undefined;
  if (typeof env.payloadType !== 'string' || !Array.isArray(env.signatures)) return undefined;
  const signatures = env.signatures.filter(
    (s): s is { sig: string; keyid?: string } => isPlainObject(s) && typeof s.sig === 'string',
  );
  return { payload: env.payload, payloadType: env.payloadType, signatures };
}

/** An envelope with this payload hash carrying this exact signature, reduced to that signature. */
function join(index: EnvelopeIndex, payloadHash: string, sig: Buffer): EnvelopeJSON | undefined {
  for (const env of index.get(payloadHash) ?? []) {
    const match = env.signatures.find((s) => Buffer.from(s.sig, 'base64').equals(sig));
    if (match) return { payload: env.payload, payloadType: env.payloadType, signatures: [match] };
  }
  return undefined;
}

/** A bundle has one verification material, and the verifier compares exactly one signature. */
function onlySignature<T>(list: unknown, entry: RekorEntry): T {
  const n = Array.isArray(list) ? list.length : 0;
  if (n !== 1 || !isPlainObject((list as unknown[])[0])) {
    throw malformed(`entry ${entry.uuid} has ${n} signatures; a bundle can carry exactly one`);
  }
  return (list as T[])[0]!;
}

/**
 * intoto 0.0.2: envelope payloadType and signatures are in the body, each sig base64 of the
 * base64 signature (Rekor stores the envelope's sig string as bytes), the statement is the
 * attestation data. Data that does not hash to the body's payloadHash is someone else's.
 */
export function intotoBundle(entry: RekorEntry, body: EntryBody, known: EnvelopeIndex): Buffer {
  const content = isPlainObject(body.spec.content) ? body.spec.content : {};
  const env = isPlainObject(content.envelope) ? content.envelope : {};
  const payloadHash = sha256Field(content.payloadHash, `entry ${entry.uuid} payload hash`);
  if (typeof env.payloadType !== 'string') {
    throw malformed(`entry ${entry.uuid} envelope has no payload type`);
  }
  const signature = onlySignature<Record<string, unknown>>(env.signatures, entry);
  const sigText = base64(signature.sig, `entry ${entry.uuid} signature`).toString('utf8');
  const sig = base64(sigText, `entry ${entry.uuid} inner signature`);
  if (entry.attestationData !== undefined) {
    checkData(entry, entry.attestationData, payloadHash);
    const keyid = typeof signature.keyid === 'string' ? { keyid: signature.keyid } : {};
    const envelope = {
      payload: entry.attestationData,
      payloadType: env.payloadType,
      signatures: [{ sig: sigText, ...keyid }],
    };
    return dsseBundle(entry, body, signature.publicKey, envelope);
  }
  const envelope = join(known, payloadHash, sig);
  if (!envelope) {
    throw missing(
      `intoto entry ${entry.uuid} (payload sha256 ${payloadHash}) came without attestation data (storage off or statement too large)`,
    );
  }
  return dsseBundle(entry, body, signature.publicKey, envelope);
}

function checkData(entry: RekorEntry, data: string, payloadHash: string): void {
  const actual = createHash('sha256').update(Buffer.from(data, 'base64')).digest('hex');
  if (actual !== payloadHash) {
    throw new GateError(
      'EVIDENCE_DATA_MISMATCH',
      `entry ${entry.uuid} attestation data has sha256 ${actual}, the logged payload hash is ${payloadHash}`,
    );
  }
}

/** dsse 0.0.1: the body holds envelopeHash, payloadHash and {signature, verifier}, never the
 * envelope, so the envelope must be joined from another source. */
export function dsseEntryBundle(entry: RekorEntry, body: EntryBody, known: EnvelopeIndex): Buffer {
  const payloadHash = sha256Field(body.spec.payloadHash, `entry ${entry.uuid} payload hash`);
  const signature = onlySignature<Record<string, unknown>>(body.spec.signatures, entry);
  const sig = base64(signature.signature, `entry ${entry.uuid} signature`);
  const envelope = join(known, payloadHash, sig);
  if (!envelope) {
    throw missing(
      `dsse entry ${entry.uuid} (payload sha256 ${payloadHash}): the log never holds the envelope`,
    );
  }
  return dsseBundle(entry, body, signature.verifier, envelope);
}

const missing = (what: string): GateError =>
  new GateError(
    'EVIDENCE_CONTENT_MISSING',
    `${what}, and no other source supplied an envelope with that payload and signature`,
  );
