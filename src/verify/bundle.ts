import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { GateError } from '../errors.js';
import { isPlainObject, parseJSON, sha256Hex } from '../util/input.js';

export const BUNDLE_MEDIA_TYPES = {
  'application/vnd.dev.sigstore.bundle+json;version=0.1': '0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2': '0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3': '0.3',
  'application/vnd.dev.sigstore.bundle.v0.3+json': '0.3',
} as const;

export interface ParsedBundle {
  bundle: Bundle;
  mediaType: string;
  version: '0.1' | '0.2' | '0.3';
  /** sha256 hex of the bytes as given (of canonical JSON text when given an object) */
  digest: string;
}

/**
 * Parses an untrusted bundle into @sigstore/bundle's normal form. Beyond the library's shape
 * checks it refuses unknown media types (the library accepts any `version=N.N`) and any base64
 * field that is not strict base64: protobuf's decoder skips bad characters, so a corrupted
 * signature would otherwise reach the crypto as different bytes than were written.
 */
export function parseBundle(input: Buffer | string | unknown): ParsedBundle {
  const isText = typeof input === 'string' || Buffer.isBuffer(input);
  const json = isText ? parseJSON(input as Buffer | string, 'bundle') : input;
  const digest = sha256Hex(isText ? (input as Buffer | string) : JSON.stringify(input));
  if (!isPlainObject(json)) throw new GateError('BUNDLE_INVALID', 'bundle must be a json object');
  const mediaType = json.mediaType;
  if (typeof mediaType !== 'string' || !(mediaType in BUNDLE_MEDIA_TYPES)) {
    throw new GateError(
      'BUNDLE_UNSUPPORTED_MEDIA_TYPE',
      `unsupported bundle media type: ${typeof mediaType === 'string' ? JSON.stringify(mediaType.slice(0, 80)) : 'missing'}`,
    );
  }
  checkShape(json);
  checkBase64Fields(json);
  checkIntegerFields(json);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    const fields = (err as { fields?: string[] }).fields;
    const detail = fields?.length ? `: ${fields.join(', ')}` : '';
    throw new GateError('BUNDLE_INVALID', `invalid bundle${detail}`, { cause: err });
  }
  const version = BUNDLE_MEDIA_TYPES[mediaType as keyof typeof BUNDLE_MEDIA_TYPES];
  return { bundle, mediaType, version, digest };
}

function checkShape(json: Record<string, unknown>): void {
  const vm = json.verificationMaterial;
  if (!isPlainObject(vm))
    throw new GateError('BUNDLE_INVALID', 'bundle has no verification material');
  const chain = vm.x509CertificateChain;
  if (chain !== undefined) {
    const certs = isPlainObject(chain) ? chain.certificates : undefined;
    if (!Array.isArray(certs) || certs.length === 0) {
      throw new GateError('BUNDLE_EMPTY_CHAIN', 'bundle certificate chain is empty');
    }
  }
  if (!isPlainObject(vm.certificate) && chain === undefined && !isPlainObject(vm.publicKey)) {
    throw new GateError('BUNDLE_INVALID', 'bundle has no certificate, chain or public key');
  }
  const hasMessage = isPlainObject(json.messageSignature);
  const hasDsse = isPlainObject(json.dsseEnvelope);
  if (hasMessage === hasDsse) {
    throw new GateError(
      'BUNDLE_INVALID',
      'bundle must hold exactly one of messageSignature or dsseEnvelope',
    );
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

// The bytes fields of the bundle protobuf, as JSON paths; `*` walks an array.
const BYTES_FIELDS = [
  'messageSignature.messageDigest.digest',
  'messageSignature.signature',
  'dsseEnvelope.payload',
  'dsseEnvelope.signatures.*.sig',
  'verificationMaterial.certificate.rawBytes',
  'verificationMaterial.x509CertificateChain.certificates.*.rawBytes',
  'verificationMaterial.tlogEntries.*.logId.keyId',
  'verificationMaterial.tlogEntries.*.canonicalizedBody',
  'verificationMaterial.tlogEntries.*.inclusionPromise.signedEntryTimestamp',
  'verificationMaterial.tlogEntries.*.inclusionProof.rootHash',
  'verificationMaterial.tlogEntries.*.inclusionProof.hashes.*',
  'verificationMaterial.timestampVerificationData.rfc3161Timestamps.*.signedTimestamp',
];

function checkBase64Fields(json: Record<string, unknown>): void {
  for (const field of BYTES_FIELDS) {
    for (const [where, value] of walk(json, field.split('.'), [])) {
      if (typeof value !== 'string') {
        throw new GateError('BUNDLE_INVALID', `bundle field ${where} must be a base64 string`);
      }
      // protobuf JSON allows either alphabet; mixing them is not base64 at all.
      // Line breaks are tolerated as Go's and Node's decoders both skip them (the byte string is
      // the same either way); any other stray character is an error.
      const text = value.includes('\n') ? value.replace(/\r?\n/g, '') : value;
      if (!isStrictBase64(text)) {
        throw new GateError('BUNDLE_BAD_BASE64', `bundle field ${where} is not valid base64`);
      }
    }
  }
}

// The int64 fields of the log entries, which decisions report: protobuf JSON writes them as
// decimal strings (or numbers). The library reads " 12", "1e3" or "0x10" as numbers where it
// checks them, and the gate reported the text as written (found by test/fuzz, issue 12).
const INT_FIELDS = [
  'verificationMaterial.tlogEntries.*.logIndex',
  'verificationMaterial.tlogEntries.*.integratedTime',
  'verificationMaterial.tlogEntries.*.inclusionProof.logIndex',
  'verificationMaterial.tlogEntries.*.inclusionProof.treeSize',
];

function checkIntegerFields(json: Record<string, unknown>): void {
  for (const field of INT_FIELDS) {
    for (const [where, value] of walk(json, field.split('.'), [])) {
      const ok =
        (typeof value === 'string' && /^(?:0|[1-9][0-9]{0,18})$/.test(value)) ||
        (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0);
      if (!ok) {
        throw new GateError(
          'BUNDLE_INVALID',
          `bundle field ${where} must be a non-negative integer`,
        );
      }
    }
  }
}

function* walk(node: unknown, path: string[], at: string[]): Generator<[string, unknown]> {
  if (path.length === 0) {
    yield [at.join('.'), node];
    return;
  }
  const [head, ...rest] = path as [string, ...string[]];
  if (head === '*') {
    if (!Array.isArray(node)) return;
    for (let i = 0; i < node.length; i++) yield* walk(node[i], rest, [...at, String(i)]);
    return;
  }
  if (!isPlainObject(node) || node[head] === undefined) return;
  yield* walk(node[head], rest, [...at, head]);
}

function isStrictBase64(value: string): boolean {
  // What node encodes is canonical padded base64, which BASE64 accepts: a round trip decides
  // most fields in a fifth of the regular expression's time (a keyless bundle's are kilobytes).
  if (Buffer.from(value, 'base64').toString('base64') === value) return true;
  if (BASE64.test(value)) return true;
  // base64url without padding: any length but one more than a multiple of four
  return BASE64URL.test(value) && !value.includes('=') && value.length % 4 !== 1;
}
