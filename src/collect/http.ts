import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import { VERSION } from '../util/version.js';
import { withRetries, type Policy } from './http-retry.js';
import { describeUrl, HttpClientError, isHttpUrl, Semaphore } from './http-support.js';

export { describeUrl, HttpClientError, mapLimit, parseRetryAfter } from './http-support.js';

const MiB = 1024 * 1024;

// undici is loaded with a client's first request, not with the gate: a decision from files
// alone never needs it (issue 11: the CLI's cold start). It is CommonJS, required synchronously.
const require = createRequire(import.meta.url);

/** How one request is tried: each of these is a client default a request may override. */
export interface RetryPolicy {
  /** per attempt, from sending the request to the last byte of the body (default 10 s) */
  timeoutMs?: number;
  /** extra attempts after the first, for 5xx, 429 and dropped connections (default 3) */
  retries?: number;
  /** first backoff; doubled per attempt, with jitter (default 200 ms) */
  backoffMs?: number;
  /** response size cap (default 16 MiB) */
  maxBytes?: number;
  /** longest Retry-After honoured; a longer one is cut to this (default 30 s) */
  maxRetryAfterMs?: number;
}

export interface HttpClientOptions extends RetryPolicy {
  /** requests in flight at once, over all origins */
  concurrency?: number;
  /** sent with every request */
  headers?: Record<string, string>;
  /** use this dispatcher instead of the client's own Agent (the client never closes it) */
  dispatcher?: Dispatcher;
}

export interface RequestOptions extends RetryPolicy {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface JSONResponse {
  status: number;
  /** lowercase names; repeated headers joined with ", " (RFC 9110 section 5.3) */
  headers: Record<string, string>;
  body: unknown;
}

/** A response as bytes, whatever its status (after 5xx and 429 were retried). */
export interface BytesResponse {
  status: number;
  /** lowercase names */
  headers: Record<string, string>;
  bytes: Buffer;
}

export interface HttpClient {
  getJSON(url: string, opts?: RequestOptions): Promise<unknown>;
  /**
   * A GET whose body is kept as bytes (content addressed by its digest, compressed blobs), and
   * whose every final status is the caller's to read: redirects are not followed, a 401's
   * challenge is there to answer. Only the headers given are sent beside the client's own.
   */
  getBytes(url: string, opts?: RequestOptions): Promise<BytesResponse>;
  postJSON(url: string, body: unknown, opts?: RequestOptions): Promise<unknown>;
  /** the whole response, for callers that need the status or headers (e.g. a Link header) */
  requestJSON(
    method: 'GET' | 'POST',
    url: string,
    opts?: RequestOptions & { body?: unknown },
  ): Promise<JSONResponse>;
  close(): Promise<void>;
}

/**
 * The one JSON-over-HTTP client of the evidence sources: a pooled undici Agent (connections kept
 * alive and reused), a timeout per attempt, bounded retries with jittered exponential backoff on
 * 5xx, 429 and dropped connections (Retry-After honoured up to a cap), a byte cap on every
 * response, a bound on the requests in flight, and a GateError with a SOURCE_* code for every
 * failure. Several sources may share one client; each may set its own policy per request.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const defaults: Policy = {
    timeoutMs: options.timeoutMs ?? 10_000,
    retries: options.retries ?? 3,
    backoffMs: options.backoffMs ?? 200,
    maxBytes: options.maxBytes ?? 16 * MiB,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 30_000,
  };
  const concurrency = options.concurrency ?? 8;
  // One Agent per client, made on its first request: its pools keep connections alive and reuse
  // them across requests.
  let agent: Dispatcher | undefined;
  const transport = {
    get dispatcher(): Dispatcher {
      return (agent ??=
        options.dispatcher ??
        new (require('undici') as typeof import('undici')).Agent({
          connections: concurrency,
          keepAliveTimeout: 30_000,
          connect: { timeout: defaults.timeoutMs },
        }));
    },
    slots: new Semaphore(concurrency),
    headers: { accept: 'application/json', 'user-agent': `gate/${VERSION}`, ...options.headers },
  };
  const send = async (
    method: 'GET' | 'POST',
    url: string,
    opts: RequestOptions & { body?: unknown },
    raw: boolean,
  ) => {
    const where = describeUrl(url);
    if (!isHttpUrl(url)) {
      throw new HttpClientError('SOURCE_UNREACHABLE', `cannot reach ${where}: not an http(s) url`);
    }
    return withRetries(transport, {
      method,
      url,
      where,
      // a form (an OAuth2 token request) goes as it is; anything else as JSON
      body:
        opts.body === undefined
          ? undefined
          : opts.body instanceof URLSearchParams
            ? opts.body.toString()
            : JSON.stringify(opts.body),
      headers: opts.headers,
      signal: opts.signal,
      policy: {
        timeoutMs: opts.timeoutMs ?? defaults.timeoutMs,
        retries: opts.retries ?? defaults.retries,
        backoffMs: opts.backoffMs ?? defaults.backoffMs,
        maxBytes: opts.maxBytes ?? defaults.maxBytes,
        maxRetryAfterMs: opts.maxRetryAfterMs ?? defaults.maxRetryAfterMs,
      },
      raw,
    });
  };
  const requestJSON: HttpClient['requestJSON'] = (method, url, opts = {}) =>
    send(method, url, opts, false);
  return {
    requestJSON,
    getBytes: async (url, opts = {}) => {
      const { status, headers, body } = await send('GET', url, opts, true);
      return { status, headers, bytes: body as Buffer };
    },
    getJSON: async (url, opts) => (await requestJSON('GET', url, opts)).body,
    postJSON: async (url, body, opts) => (await requestJSON('POST', url, { ...opts, body })).body,
    close: async () => {
      if (agent !== undefined && agent !== options.dispatcher) await agent.close();
    },
  };
}
