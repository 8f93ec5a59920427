import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { VERSION } from '../util/version.js';
import { describeUrl, HttpClientError, parseRetryAfter, Semaphore } from './http-support.js';

/**
 * Byte-exact GETs for the registry client. The shared JSON client parses bodies, but OCI content
 * is addressed by the digest of its exact bytes and a 401's `WWW-Authenticate` header drives the
 * token flow, so this transport returns status, headers and raw bytes. Same habits as the shared
 * client: pooled connections, a timeout per attempt, bounded retries on 5xx/429/dropped
 * connections with Retry-After honoured up to a cap, a byte cap counted while streaming.
 */
export interface RawResponse {
  status: number;
  /** lowercase names */
  headers: Record<string, string>;
  bytes: Buffer;
  /** the URL that answered, after redirects */
  url: string;
}

export interface TransportOptions {
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  maxRetryAfterMs: number;
  concurrency: number;
  dispatcher?: Dispatcher;
}

export interface GetOptions {
  headers?: Record<string, string>;
  maxBytes: number;
  signal?: AbortSignal;
}

export interface OciTransport {
  get(url: string, opts: GetOptions): Promise<RawResponse>;
  close(): Promise<void>;
}

export function createOciTransport(o: TransportOptions): OciTransport {
  const dispatcher =
    o.dispatcher ?? new Agent({ connections: o.concurrency, keepAliveTimeout: 30_000 });
  const slots = new Semaphore(o.concurrency);
  const get = async (url: string, opts: GetOptions): Promise<RawResponse> => {
    for (let attempt = 0; ; attempt++) {
      const r = await once(url, opts);
      const retryable = r.status === 429 || r.status >= 500;
      if (!retryable || attempt >= o.retries) return r;
      const exp = o.backoffMs * 2 ** attempt;
      const after = parseRetryAfter(r.headers['retry-after']);
      await wait(
        after === undefined
          ? exp / 2 + (Math.random() * exp) / 2
          : Math.min(after, o.maxRetryAfterMs),
        url,
        opts.signal,
      );
    }
  };
  const once = async (url: string, opts: GetOptions): Promise<RawResponse> => {
    const release = await slots.acquire(opts.signal).catch(() => {
      throw cancelled(url);
    });
    try {
      return await attempt(dispatcher, url, opts, o.timeoutMs);
    } finally {
      release();
    }
  };
  return {
    get,
    close: async () => {
      if (dispatcher !== o.dispatcher) await dispatcher.close();
    },
  };
}

async function attempt(
  dispatcher: Dispatcher,
  url: string,
  opts: GetOptions,
  timeoutMs: number,
): Promise<RawResponse> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  try {
    const res = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { 'user-agent': `gate/${VERSION}`, ...opts.headers },
      signal,
    });
    const headers = flatten(res.headers);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      // Error bodies are not needed; drain a little so the connection can be reused.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      return { status: res.statusCode, headers, bytes: Buffer.alloc(0), url };
    }
    return {
      status: res.statusCode,
      headers,
      bytes: await readCapped(res, url, opts.maxBytes),
      url,
    };
  } catch (err) {
    if (err instanceof HttpClientError) throw err;
    if (opts.signal?.aborted) throw cancelled(url);
    if (deadline.aborted) {
      throw new HttpClientError(
        'SOURCE_TIMEOUT',
        `${describeUrl(url)} timed out after ${timeoutMs} ms`,
      );
    }
    const code = String((err as { code?: unknown }).code ?? 'network error').toLowerCase();
    throw new HttpClientError('SOURCE_UNREACHABLE', `cannot reach ${describeUrl(url)}: ${code}`, {
      cause: err,
    });
  }
}

/** Counted while streaming: a registry that never stops sending is cut off at the cap. */
async function readCapped(res: Dispatcher.ResponseData, url: string, max: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpClientError('SOURCE_TOO_LARGE', `${describeUrl(url)} answered more than ${max} bytes`);
  if (Number(res.headers['content-length'] ?? 0) > max) {
    res.body.on('error', () => {});
    res.body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      res.body.on('error', () => {});
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function flatten(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function wait(ms: number, url: string, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw cancelled(url);
  }
}

const cancelled = (url: string) =>
  new HttpClientError('SOURCE_TIMEOUT', `request to ${describeUrl(url)} was cancelled`);
