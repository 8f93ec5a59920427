import crypto from 'node:crypto';
import { GateError } from '../errors.js';
import { isPlainObject } from '../util/input.js';
import type { TrustedKey } from './types.js';

/**
 * One form of key id everywhere the gate reports a key: cosign's hint, base64 of the SHA-256 of
 * the key's DER SubjectPublicKeyInfo. The hex form of the same digest (what other tools print)
 * is accepted wherever a user names a key, and normalised to this one.
 */
export function keyIdOf(key: crypto.KeyObject): string {
  return spkiDigest(key).toString('base64');
}

const HEX_ID = /^[0-9a-fA-F]{64}$/;

/** A key id as written by a user (hint or hex form) in the form the gate reports. */
export function normaliseKeyId(id: string): string {
  return HEX_ID.test(id) ? Buffer.from(id, 'hex').toString('base64') : id;
}

/** A configured key, parsed once, with both id forms a bundle's hint may use to select it. */
export interface ParsedKey {
  publicKey: crypto.KeyObject;
  keyId: string;
  hexId: string;
  /** the configured selector, when the user gave one */
  hint?: string;
  /** may sign without a log entry or a timestamp (TrustedKey.transparency) */
  transparencyOptional?: true;
}

export function parseTrustedKey(key: TrustedKey): ParsedKey {
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey(key.pem);
  } catch (err) {
    throw new GateError('PUBLIC_KEY_INVALID', 'trusted key is not a pem public key', {
      cause: err,
    });
  }
  const digest = spkiDigest(publicKey);
  return {
    publicKey,
    keyId: digest.toString('base64'),
    hexId: digest.toString('hex'),
    ...(key.hint !== undefined ? { hint: key.hint } : {}),
    ...(key.transparency === 'optional' ? { transparencyOptional: true as const } : {}),
  };
}

/** The most keys one signature is tried against when its hint names none of them. */
export const MAX_KEY_ATTEMPTS = 16;

/**
 * The keys to try, in order, for a signature whose (unsigned) hint is `hint`. The hint only
 * orders the search: keys it names (by configured selector or by either id form) come first,
 * then the rest, up to MAX_KEY_ATTEMPTS in all. Whoever wrote the hint never chooses who the
 * signer is: that is the key that verifies.
 */
export function candidateKeys(hint: string | undefined, keys: ParsedKey[]): ParsedKey[] {
  const names = (k: ParsedKey) =>
    hint !== undefined && (k.hint === hint || k.keyId === hint || k.hexId === hint.toLowerCase());
  const ordered = [...keys.filter(names), ...keys.filter((k) => !names(k))];
  if (ordered.length > MAX_KEY_ATTEMPTS && !names(ordered[0]!)) {
    throw new GateError(
      'PUBLIC_KEY_INVALID',
      `the signature's key hint names none of the ${keys.length} trusted keys, more than the ${MAX_KEY_ATTEMPTS} the gate tries`,
    );
  }
  return ordered.slice(0, MAX_KEY_ATTEMPTS);
}

/**
 * Policy data names keys as `key_id`, in either form: every such string in the data is put in
 * the reported form once, when the policy loads, so rules compare one form with one form.
 */
export function normaliseKeyIds(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(normaliseKeyIds);
  if (!isPlainObject(data)) return data;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    out[k] = k === 'key_id' && typeof v === 'string' ? normaliseKeyId(v) : normaliseKeyIds(v);
  }
  return out;
}

function spkiDigest(key: crypto.KeyObject): Buffer {
  return crypto
    .createHash('sha256')
    .update(key.export({ format: 'der', type: 'spki' }))
    .digest();
}
