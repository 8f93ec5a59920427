import { describeUrl, HttpClientError, isHttpUrl } from './http-support.js';
import type { HttpClient } from './http.js';

export interface BlobOptions {
  /** the shared client: its retries, timeouts and byte cap serve here too */
  http: HttpClient;
  /** compressed bytes accepted from the blob host */
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 3;

/**
 * The bytes behind a bundle_url. The GET carries no Authorization header at all (the shared
 * client adds none of its own; the API token is only ever given per request to the API), and
 * redirects are followed by hand, each hop sent the same way: the API token must never reach the
 * blob host, whatever its origin and wherever it redirects.
 */
export async function fetchBlob(url: string, o: BlobOptions): Promise<Buffer> {
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await o.http.getBytes(at, {
      headers: { accept: '*/*' },
      maxBytes: o.maxBytes,
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (res.status >= 200 && res.status < 300) return res.bytes;
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new HttpClientError(
        'SOURCE_BAD_RESPONSE',
        `${describeUrl(at)} answered http ${res.status}`,
        {
          status: res.status,
        },
      );
    }
    const next = new URL(location, at).href;
    if (!isHttpUrl(next)) {
      throw new HttpClientError('SOURCE_BAD_RESPONSE', `${describeUrl(at)} redirects off http(s)`);
    }
    at = next;
  }
  throw new HttpClientError(
    'SOURCE_BAD_RESPONSE',
    `${describeUrl(url)} redirects more than ${MAX_REDIRECTS} times`,
  );
}
