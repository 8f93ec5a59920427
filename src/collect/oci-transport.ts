import type { HttpClient } from './http.js';

/**
 * Byte-exact GETs for the registry client, over the shared HTTP client's bytes mode: OCI content
 * is addressed by the digest of its exact bytes, and a 401's `WWW-Authenticate` header drives the
 * token flow, so every answer comes back with its status, headers and raw bytes. Pooling,
 * timeouts, retries with Retry-After and the byte cap are the shared client's.
 */
export interface RawResponse {
  status: number;
  /** lowercase names */
  headers: Record<string, string>;
  bytes: Buffer;
  /** the URL that answered (redirects are followed by the caller, hop by hop) */
  url: string;
}

export interface GetOptions {
  headers?: Record<string, string>;
  maxBytes: number;
  signal?: AbortSignal;
}

export interface OciTransport {
  get(url: string, opts: GetOptions): Promise<RawResponse>;
}

export function createOciTransport(
  http: HttpClient,
  o: { timeoutMs: number; retries: number },
): OciTransport {
  return {
    get: async (url, opts) => ({
      ...(await http.getBytes(url, {
        headers: { ...opts.headers },
        maxBytes: opts.maxBytes,
        timeoutMs: o.timeoutMs,
        retries: o.retries,
        ...(opts.signal ? { signal: opts.signal } : {}),
      })),
      url,
    }),
  };
}
