import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { GateErrorCode } from '../errors.js';
import type { JSONResponse } from './http.js';
import { HttpClientError, parseRetryAfter, type Semaphore } from './http-support.js';

// undici is CommonJS, required on the first request rather than with the gate (issue 11).
const require = createRequire(import.meta.url);

/** Longest backoff between attempts, whatever the attempt number. */
const MAX_BACKOFF_MS = 30_000;

/** What a request runs under: the client's settings, each overridable per request. */
export interface Policy {
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  maxBytes: number;
  maxRetryAfterMs: number;
}

/** What every request of one client shares. */
export interface Transport {
  dispatcher: Dispatcher;
  slots: Semaphore;
  headers: Record<string, string>;
}

export interface Call {
  method: 'GET' | 'POST';
  url: string;
  /** the url as messages show it */
  where: string;
  body: string | undefined;
  headers: Record<string, string> | undefined;
  signal: AbortSignal | undefined;
  policy: Policy;
  /**
   * Raw: the body is handed back as bytes, unparsed, and every final status is an answer (a
   * registry's 401 carries its token challenge, a 3xx the redirect its caller follows by hand);
   * 5xx and 429 are still retried first.
   */
  raw?: boolean;
}

type Attempt =
  | { ok: JSONResponse }
  | { error: HttpClientError; retry: boolean; retryAfterMs?: number; answer?: JSONResponse };

/** Attempts until one succeeds, a failure is final, or the retries are spent. */
export async function withRetries(t: Transport, call: Call): Promise<JSONResponse> {
  const p = call.policy;
  for (let attempt = 0; ; attempt++) {
    const outcome = await attemptOnce(t, call);
    if ('ok' in outcome) return outcome.ok;
    if (!outcome.retry || attempt >= p.retries) {
      if (outcome.answer) return outcome.answer;
      throw outcome.error;
    }
    const exp = Math.min(p.backoffMs * 2 ** attempt, MAX_BACKOFF_MS);
    // Jitter spreads the retries of many gates that failed at the same moment.
    const backoff = exp / 2 + (Math.random() * exp) / 2;
    const wait =
      outcome.retryAfterMs === undefined
        ? backoff
        : Math.min(outcome.retryAfterMs, p.maxRetryAfterMs);
    try {
      await sleep(wait, undefined, { signal: call.signal });
    } catch {
      // Say what it was waiting out: a 429 asking to come back in a day is rate limiting, not a
      // slow source; "cancelled" alone did not say (test/faults/store.test.ts, issue 12).
      throw cancelled(call.where, waitingAfter(outcome));
    }
  }
}

/** One attempt, holding a concurrency slot; every failure comes back as a value, never thrown. */
async function attemptOnce(t: Transport, call: Call): Promise<Attempt> {
  let release: () => void;
  try {
    release = await t.slots.acquire(call.signal);
  } catch {
    return { error: cancelled(call.where), retry: false };
  }
  try {
    return await timedRequest(t, call);
  } finally {
    release();
  }
}

/** The timeout starts once a slot is held: waiting for a slot is not the server's fault. */
async function timedRequest(t: Transport, call: Call): Promise<Attempt> {
  const { timeoutMs } = call.policy;
  const deadline = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    deadline.abort();
  }, timeoutMs);
  const caller = call.signal;
  const signal = caller ? AbortSignal.any([caller, deadline.signal]) : deadline.signal;
  try {
    const contentType = call.body === undefined ? {} : { 'content-type': 'application/json' };
    const { request } = require('undici') as typeof import('undici');
    const res = await request(call.url, {
      dispatcher: t.dispatcher,
      method: call.method,
      headers: { ...t.headers, ...contentType, ...call.headers },
      body: call.body,
      signal,
    });
    return await readResponse(res, call);
  } catch (err) {
    if (timedOut) {
      const message = `${call.where} timed out after ${timeoutMs} ms`;
      return { error: new HttpClientError('SOURCE_TIMEOUT', message), retry: false };
    }
    if (caller?.aborted) return { error: cancelled(call.where), retry: false };
    return classify(err, call.where);
  } finally {
    clearTimeout(timer);
  }
}

async function readResponse(res: Dispatcher.ResponseData, call: Call): Promise<Attempt> {
  const { maxBytes } = call.policy;
  const status = res.statusCode;
  if (status < 200 || status >= 300) {
    // Drain a little so the connection can be reused; a huge error body closes it instead.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    const message = `${call.where} answered http ${status}`;
    const error = new HttpClientError('SOURCE_BAD_RESPONSE', message, { status });
    const retry = status >= 500 || status === 429;
    const answer = call.raw
      ? { status, headers: headersOf(res), body: Buffer.alloc(0) }
      : undefined;
    if (answer && !retry) return { ok: answer };
    const retryAfterMs = parseRetryAfter(header(res.headers['retry-after']));
    return { error, retry, retryAfterMs, ...(answer ? { answer } : {}) };
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
  const bytes = Buffer.concat(chunks);
  if (call.raw) return { ok: { status, headers: headersOf(res), body: bytes } };
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return {
      error: new HttpClientError('SOURCE_BAD_RESPONSE', `${call.where} answered malformed json`, {
        status,
      }),
      retry: false,
    };
  }
  return { ok: { status, headers: headersOf(res), body } };
}

/** Lowercase names; repeated headers joined with ", " (RFC 9110 section 5.3). */
function headersOf(res: Dispatcher.ResponseData): Record<string, string> {
  return Object.fromEntries(
    Object.entries(res.headers).map(([k, v]) => [k.toLowerCase(), header(v) ?? '']),
  );
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

const header = (v: string | string[] | undefined): string | undefined =>
  Array.isArray(v) ? v.join(', ') : v;

/** Closes the connection instead of reading the rest; its abort error is expected, not news. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

const tooLarge = (where: string, max: number) =>
  new HttpClientError('SOURCE_TOO_LARGE', `${where} answered more than ${max} bytes`);

const cancelled = (where: string, waiting?: string) =>
  new HttpClientError(
    'SOURCE_TIMEOUT',
    `request to ${where} was cancelled${waiting ? ` while waiting to retry after ${waiting}` : ''}`,
  );

/** The failure a retry was waiting out: `http 429, which asked to retry after 100000 s`. */
function waitingAfter(o: { error: HttpClientError; retryAfterMs?: number }): string {
  const what =
    o.error.status !== undefined ? `http ${o.error.status}` : o.error.message.split(': ').at(-1)!;
  const asked =
    o.retryAfterMs === undefined
      ? ''
      : `, which asked to retry after ${Math.round(o.retryAfterMs / 1000)} s`;
  return `${what}${asked}`;
}
