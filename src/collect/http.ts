import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { GateError, type GateErrorCode } from '../errors.js';
import { VERSION } from '../version.js';

const MiB = 1024 * 1024;
/** Longest backoff between attempts, whatever the attempt number. */
const MAX_BACKOFF_MS = 30_000;

export interface HttpClientOptions {
  /** per attempt, from sending the request to the last byte of the body */
  timeoutMs?: number;
  /** extra attempts after the first, for 5xx, 429 and dropped connections */
  retries?: number;
  /** first backoff; doubled per attempt, with jitter */
  backoffMs?: number;
  /** default response size cap */
  maxBytes?: number;
  /** requests in flight at once, over all origins */
  concurrency?: number;
  /** longest Retry-After honoured; a longer one is cut to this (default 30 s) */
  maxRetryAfterMs?: number;
  /** sent with every request */
  headers?: Record<string, string>;
  /** use this dispatcher instead of the client's own Agent (the client never closes it) */
  dispatcher?: Dispatcher;
}

export interface RequestOptions {
  maxBytes?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface JSONResponse {
  status: number;
  /** lowercase names; repeated headers joined with ", " (RFC 9110 section 5.3) */
  headers: Record<string, string>;
  body: unknown;
}

export interface HttpClient {
  getJSON(url: string, opts?: RequestOptions): Promise<unknown>;
  postJSON(url: string, body: unknown, opts?: RequestOptions): Promise<unknown>;
  /** the whole response, for callers that need the status or headers (e.g. a Link header) */
  requestJSON(
    method: 'GET' | 'POST',
    url: string,
    opts?: RequestOptions & { body?: unknown },
  ): Promise<JSONResponse>;
  close(): Promise<void>;
}

/** A GateError from the HTTP client; `status` is set when the server answered non-2xx. */
export class HttpClientError extends GateError {
  readonly status: number | undefined;
  constructor(
    code: GateErrorCode,
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(code, message, { cause: opts.cause });
    this.name = 'HttpClientError';
    this.status = opts.status;
  }
}

type Settings = Required<Omit<HttpClientOptions, 'dispatcher' | 'concurrency'>> & {
  dispatcher: Dispatcher;
  slots: Semaphore;
};

interface Call {
  method: 'GET' | 'POST';
  url: string;
  where: string;
  body: string | undefined;
  opts: RequestOptions;
}

type Attempt =
  { ok: JSONResponse } | { error: HttpClientError; retry: boolean; retryAfterMs?: number };

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const concurrency = options.concurrency ?? 8;
  // One Agent per client: its pools keep connections alive and reuse them across requests.
  const dispatcher =
    options.dispatcher ??
    new Agent({
      connections: concurrency,
      keepAliveTimeout: 30_000,
      connect: { timeout: timeoutMs },
    });
  const settings: Settings = {
    timeoutMs,
    retries: options.retries ?? 3,
    backoffMs: options.backoffMs ?? 200,
    maxBytes: options.maxBytes ?? 16 * MiB,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 30_000,
    headers: { accept: 'application/json', 'user-agent': `gate/${VERSION}`, ...options.headers },
    dispatcher,
    slots: new Semaphore(concurrency),
  };
  const requestJSON: HttpClient['requestJSON'] = async (method, url, opts = {}) => {
    const where = describeUrl(url);
    if (!isHttpUrl(url)) {
      throw new HttpClientError('SOURCE_UNREACHABLE', `cannot reach ${where}: not an http(s) url`);
    }
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return withRetries(settings, { method, url, where, body, opts });
  };
  return {
    requestJSON,
    getJSON: async (url, opts) => (await requestJSON('GET', url, opts)).body,
    postJSON: async (url, body, opts) => (await requestJSON('POST', url, { ...opts, body })).body,
    close: async () => {
      if (dispatcher !== options.dispatcher) await dispatcher.close();
    },
  };
}

async function withRetries(s: Settings, call: Call): Promise<JSONResponse> {
  for (let attempt = 0; ; attempt++) {
    const outcome = await attemptOnce(s, call);
    if ('ok' in outcome) return outcome.ok;
    if (!outcome.retry || attempt >= s.retries) throw outcome.error;
    const exp = Math.min(s.backoffMs * 2 ** attempt, MAX_BACKOFF_MS);
    // Jitter spreads the retries of many gates that failed at the same moment.
    const backoff = exp / 2 + (Math.random() * exp) / 2;
    const wait =
      outcome.retryAfterMs === undefined
        ? backoff
        : Math.min(outcome.retryAfterMs, s.maxRetryAfterMs);
    try {
      await sleep(wait, undefined, { signal: call.opts.signal });
    } catch {
      throw cancelled(call.where);
    }
  }
}

/** One attempt, holding a concurrency slot; every failure comes back as a value, never thrown. */
async function attemptOnce(s: Settings, call: Call): Promise<Attempt> {
  let release: () => void;
  try {
    release = await s.slots.acquire(call.opts.signal);
  } catch {
    return { error: cancelled(call.where), retry: false };
  }
  try {
    return await timedRequest(s, call);
  } finally {
    release();
  }
}

/** The timeout starts once a slot is held: waiting for a slot is not the server's fault. */
async function timedRequest(s: Settings, call: Call): Promise<Attempt> {
  const deadline = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    deadline.abort();
  }, s.timeoutMs);
  const caller = call.opts.signal;
  const signal = caller ? AbortSignal.any([caller, deadline.signal]) : deadline.signal;
  try {
    const contentType = call.body === undefined ? {} : { 'content-type': 'application/json' };
    const res = await request(call.url, {
      dispatcher: s.dispatcher,
      method: call.method,
      headers: { ...s.headers, ...contentType, ...call.opts.headers },
      body: call.body,
      signal,
    });
    return await readResponse(res, call, call.opts.maxBytes ?? s.maxBytes);
  } catch (err) {
    if (timedOut) {
      const message = `${call.where} timed out after ${s.timeoutMs} ms`;
      return { error: new HttpClientError('SOURCE_TIMEOUT', message), retry: false };
    }
    if (caller?.aborted) return { error: cancelled(call.where), retry: false };
    return classify(err, call.where);
  } finally {
    clearTimeout(timer);
  }
}

async function readResponse(
  res: Dispatcher.ResponseData,
  call: Call,
  maxBytes: number,
): Promise<Attempt> {
  const status = res.statusCode;
  if (status < 200 || status >= 300) {
    // Drain a little so the connection can be reused; a huge error body closes it instead.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    const error = new HttpClientError(
      'SOURCE_BAD_RESPONSE',
      `${call.where} answered http ${status}`,
      {
        status,
      },
    );
    const retry = status >= 500 || status === 429;
    return { error, retry, retryAfterMs: parseRetryAfter(header(res.headers['retry-after'])) };
  }
  const declared = Number(header(res.headers['content-length']) ?? NaN);
  if (declared > maxBytes) {
    discard(res.body);
    throw tooLarge(call.where, maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // Counted while streaming: a server that never stops sending is cut off at the cap.
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      discard(res.body);
      throw tooLarge(call.where, maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  // undici's pool learns a connection is free from a 'drain' event emitted just after the body
  // ends; yielding once lets the caller's next request reuse that socket instead of opening one.
  await new Promise((r) => setImmediate(r));
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return {
      error: new HttpClientError('SOURCE_BAD_RESPONSE', `${call.where} answered malformed json`, {
        status,
      }),
      retry: false,
    };
  }
  const headers = Object.fromEntries(
    Object.entries(res.headers).map(([k, v]) => [k.toLowerCase(), header(v) ?? '']),
  );
  return { ok: { status, headers, body } };
}

/** Connection-level codes worth another try: a dropped connection, a restarting service. */
const TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

function classify(err: unknown, where: string): Attempt {
  if (err instanceof HttpClientError) return { error: err, retry: false };
  const code = errorCode(err) ?? 'network error';
  const detail = code.toLowerCase();
  const fail = (c: GateErrorCode, message: string, retry: boolean): Attempt => ({
    error: new HttpClientError(c, message, { cause: err }),
    retry,
  });
  if (/TIMEOUT/.test(code)) return fail('SOURCE_TIMEOUT', `${where} timed out: ${detail}`, false);
  const what = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'cannot resolve' : 'cannot reach';
  return fail('SOURCE_UNREACHABLE', `${what} ${where}: ${detail}`, TRANSIENT.has(code));
}

/** The errno-style code, also from inside undici's wrappers and happy-eyeballs AggregateErrors. */
function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  if (typeof e?.code === 'string' && e.code !== 'UND_ERR') return e.code;
  if (e?.cause) return errorCode(e.cause);
  if (Array.isArray(e?.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  return undefined;
}

/** Retry-After is delta-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The URL as messages show it: no userinfo and no query, which may carry tokens; the rest names
 * the source well enough to act on.
 */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname === '/' ? '' : u.pathname;
    return `${u.origin}${path}${u.search ? '?…' : ''}`;
  } catch {
    return 'an invalid url';
  }
}

function isHttpUrl(url: string): boolean {
  try {
    return /^https?:$/.test(new URL(url).protocol);
  } catch {
    return false;
  }
}

const header = (v: string | string[] | undefined): string | undefined =>
  Array.isArray(v) ? v.join(', ') : v;

/** Closes the connection instead of reading the rest; its abort error is expected, not news. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

const tooLarge = (where: string, max: number) =>
  new HttpClientError('SOURCE_TOO_LARGE', `${where} answered more than ${max} bytes`);

const cancelled = (where: string) =>
  new HttpClientError('SOURCE_TIMEOUT', `request to ${where} was cancelled`);

/** A counting semaphore: slots pass straight to the next waiter, in arrival order. */
class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(slots: number) {
    this.free = Math.max(1, slots);
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw signal.reason;
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.waiting.splice(this.waiting.indexOf(grant), 1);
          reject(signal?.reason);
        };
        this.waiting.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
