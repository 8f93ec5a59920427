import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import { GateError } from '../errors.js';

/**
 * A small JSON-over-HTTP client for one evidence source: a pooled undici Agent (connections are
 * reused across requests), a timeout per attempt, bounded retries with exponential backoff on 5xx
 * and 429 (Retry-After honoured up to a cap), and a byte cap on every response body. Every failure
 * is a GateError with a SOURCE_* code. Written to be merged with src/collect/http.ts later.
 */

/** The part of fetch this client needs: undici's fetch, the global fetch or a test double. */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface FetchResponse {
  status: number;
  headers: { get(name: string): string | null };
  body: AsyncIterable<Uint8Array> | null;
}

export interface HttpClientOptions {
  /** replaces the pooled undici fetch (then connection reuse is up to that fetch) */
  fetch?: FetchLike;
  /** per attempt, headers and body together (default 10 s) */
  timeoutMs?: number;
  /** largest response body accepted (default 8 MiB) */
  maxBytes?: number;
  /** retries after the first attempt on 5xx, 429 and reset connections (default 2) */
  retries?: number;
  /** first backoff delay, doubled on each retry (default 250 ms) */
  retryDelayMs?: number;
  /** longest wait between attempts; a longer Retry-After ends the retries (default 10 s) */
  maxRetryDelayMs?: number;
  /** pooled connections per origin (default 4) */
  connections?: number;
}

export interface HttpReply {
  status: number;
  bytes: Buffer;
}

const DEFAULTS = {
  timeoutMs: 10_000,
  maxBytes: 8 * 1024 * 1024,
  retries: 2,
  retryDelayMs: 250,
  maxRetryDelayMs: 10_000,
};
// Connection-level errors worth another attempt: the peer dropped a reused keep-alive socket.
const RETRY_NET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

export class HttpClient {
  private readonly opts: typeof DEFAULTS;
  private readonly agent: Agent | undefined;
  private readonly fetch: FetchLike;

  constructor(opts: HttpClientOptions = {}) {
    this.opts = {
      timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
      maxBytes: opts.maxBytes ?? DEFAULTS.maxBytes,
      retries: opts.retries ?? DEFAULTS.retries,
      retryDelayMs: opts.retryDelayMs ?? DEFAULTS.retryDelayMs,
      maxRetryDelayMs: opts.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs,
    };
    if (opts.fetch) {
      this.fetch = opts.fetch;
    } else {
      const agent = new Agent({ connections: opts.connections ?? 4, keepAliveTimeout: 4_000 });
      this.agent = agent;
      this.fetch = (url, init) =>
        undiciFetch(url, { ...init, dispatcher: agent }) as unknown as Promise<FetchResponse>;
    }
  }

  /** GET or POST (JSON body); returns the final status and body after retries. */
  async request(
    method: 'GET' | 'POST',
    url: string,
    json?: unknown,
    signal?: AbortSignal,
  ): Promise<HttpReply> {
    const body = json === undefined ? undefined : JSON.stringify(json);
    for (let attempt = 0; ; attempt++) {
      let reply: HttpReply & { retryAfter: string | null };
      try {
        reply = await this.once(method, url, body, signal);
      } catch (err) {
        const code = errorCode(err);
        if (!(err instanceof GateError) && RETRY_NET.has(code) && attempt < this.opts.retries) {
          await this.wait(this.backoff(attempt), signal, method, url);
          continue;
        }
        throw err instanceof GateError ? err : this.classify(err, method, url, signal);
      }
      const retryable = reply.status === 429 || reply.status >= 500;
      const delay = retryable && attempt < this.opts.retries ? this.delay(attempt, reply) : null;
      if (delay === null) return { status: reply.status, bytes: reply.bytes };
      await this.wait(delay, signal, method, url);
    }
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }

  private async once(method: string, url: string, body: string | undefined, signal?: AbortSignal) {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await this.fetch(url, { method, headers, signal: combined, body });
      const bytes = await readCapped(res, this.opts.maxBytes, `${method} ${url}`);
      return { status: res.status, bytes, retryAfter: res.headers.get('retry-after') };
    } catch (err) {
      if (err instanceof GateError) throw err;
      if (timeout.aborted && !signal?.aborted) {
        throw new GateError(
          'SOURCE_TIMEOUT',
          `${method} ${url}: no complete response within ${this.opts.timeoutMs} ms`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Exponential backoff; a server's Retry-After wins when longer. null: stop retrying. */
  private delay(attempt: number, reply: { retryAfter: string | null }): number | null {
    const backoff = this.backoff(attempt);
    const asked = retryAfterMs(reply.retryAfter);
    if (asked !== undefined && asked > this.opts.maxRetryDelayMs) return null;
    return Math.min(Math.max(backoff, asked ?? 0), this.opts.maxRetryDelayMs);
  }

  private backoff(attempt: number): number {
    // Jitter spreads retries of concurrent batches so they do not hit the server in lockstep.
    const base = this.opts.retryDelayMs * 2 ** attempt;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private async wait(ms: number, signal: AbortSignal | undefined, method: string, url: string) {
    try {
      await sleep(ms, undefined, signal ? { signal } : {});
    } catch (err) {
      throw this.classify(err, method, url, signal);
    }
  }

  private classify(err: unknown, method: string, url: string, signal?: AbortSignal): GateError {
    const where = `${method} ${url}`;
    if (signal?.aborted) {
      const deadline = (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
      return new GateError(
        deadline ? 'SOURCE_TIMEOUT' : 'SOURCE_UNREACHABLE',
        `${where}: ${deadline ? 'the collection deadline passed' : 'collection was aborted'}`,
        { cause: err },
      );
    }
    const code = errorCode(err);
    const detail = code || (err instanceof Error ? err.message : String(err));
    return new GateError(
      TIMEOUT_CODES.has(code) ? 'SOURCE_TIMEOUT' : 'SOURCE_UNREACHABLE',
      `${where}: ${detail}`,
      { cause: err },
    );
  }
}

/** Reads a body up to `max` bytes; beyond it the stream is cancelled and nothing is kept. */
async function readCapped(res: FetchResponse, max: number, where: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  const tooLarge = () =>
    new GateError('SOURCE_TOO_LARGE', `${where}: response is over the limit of ${max} bytes`);
  if (declared > max) {
    await cancel(res.body);
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    total += chunk.byteLength;
    // Leaving the loop early cancels the stream, which aborts the transfer.
    if (total > max) throw tooLarge();
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, total);
}

async function cancel(body: AsyncIterable<Uint8Array> | null): Promise<void> {
  const it = body?.[Symbol.asyncIterator]();
  await it?.return?.().catch(() => undefined);
}

/** Seconds or an HTTP date (RFC 9110 10.2.3), in ms from now. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** undici wraps socket errors: fetch rejects with TypeError('fetch failed', { cause }). */
function errorCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return '';
}

/** Parses a JSON reply that must be 2xx; anything else is a SOURCE_BAD_RESPONSE. */
export function expectJSON(reply: HttpReply, where: string): unknown {
  if (reply.status < 200 || reply.status > 299) {
    const text = reply.bytes.toString('utf8', 0, Math.min(reply.bytes.length, 200)).trim();
    throw new GateError(
      'SOURCE_BAD_RESPONSE',
      `${where}: http ${reply.status}${text ? `: ${JSON.stringify(text)}` : ''}`,
    );
  }
  try {
    return JSON.parse(reply.bytes.toString('utf8'));
  } catch (err) {
    throw new GateError('SOURCE_BAD_RESPONSE', `${where}: response is not json`, { cause: err });
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
