import { GateError, toGateError, type GateErrorCode } from '../errors.js';
import { isPlainObject } from '../util/input.js';
import { describeUrl, isHttpUrl } from './http-support.js';
import { decodeBundleBody } from './snappy.js';
import { fetchBlob, type BlobOptions } from './store-blob.js';

/** What one attestation entry holds: bundle bytes, or why it cannot count. */
export type EntryBundle = { bytes: Buffer } | { code: GateErrorCode; message: string };

export interface EntryOptions extends Omit<BlobOptions, 'maxBytes'> {
  /** bundle bytes accepted, compressed or not */
  maxBundleBytes: number;
}

/**
 * The bundle of one entry of a GitHub attestations response: inline as `bundle`, or, as GitHub
 * answers since July 2026, `bundle: null` with a `bundle_url` to a snappy-compressed copy on blob
 * storage. A body that is not a bundle is a rejection of that entry; a blob host that cannot be
 * read throws, and the whole source could not decide: what it held may have been a deny.
 */
export async function entryBundle(
  entry: unknown,
  what: string,
  o: EntryOptions,
): Promise<EntryBundle> {
  if (!isPlainObject(entry))
    return { code: 'EVIDENCE_MALFORMED', message: `${what} is not an object` };
  if (isPlainObject(entry.bundle)) {
    return { bytes: Buffer.from(JSON.stringify(entry.bundle), 'utf8') };
  }
  const url = entry.bundle_url;
  if (entry.bundle !== null && entry.bundle !== undefined) {
    return { code: 'EVIDENCE_MALFORMED', message: `${what} has a bundle that is not an object` };
  }
  if (typeof url !== 'string' || url === '') {
    return {
      code: 'EVIDENCE_CONTENT_MISSING',
      message: `${what} has neither bundle nor bundle_url`,
    };
  }
  if (!isHttpUrl(url)) {
    return { code: 'EVIDENCE_MALFORMED', message: `${what} has a bundle_url that is not http(s)` };
  }
  let body: Buffer;
  try {
    body = await fetchBlob(url, { ...o, maxBytes: o.maxBundleBytes });
  } catch (err) {
    const e = toGateError(err, 'SOURCE_UNREACHABLE');
    throw new GateError(e.code, `bundle_url of ${what}: ${e.message}`, { cause: err });
  }
  return decoded(body, what, url, o.maxBundleBytes);
}

function decoded(body: Buffer, what: string, url: string, max: number): EntryBundle {
  const from = `${what} (${describeUrl(url)})`;
  try {
    const bytes = decodeBundleBody(body, max);
    // Parsed here only to turn a body that is not a JSON object into this entry's rejection;
    // the verify stage parses the same bytes again, as it does every bundle.
    if (!isPlainObject(JSON.parse(bytes.toString('utf8')))) {
      return { code: 'EVIDENCE_MALFORMED', message: `${from} is not a json object` };
    }
    return { bytes };
  } catch (err) {
    if (err instanceof SyntaxError) {
      return { code: 'EVIDENCE_MALFORMED', message: `${from} is not json` };
    }
    const e = toGateError(err, 'EVIDENCE_MALFORMED');
    return { code: e.code, message: `${from}: ${e.message}` };
  }
}
