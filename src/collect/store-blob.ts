import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { VERSION } from '../util/version.js';
import { describeUrl, HttpClientError, isHttpUrl } from './http-support.js';

export interface BlobOptions {
  /** compressed bytes accepted from the blob host */
  maxBytes: number;
  timeoutMs: number;
  retries: number;
  signal?: AbortSignal;
  /** default: undici's global dispatcher */
  dispatcher?: Dispatcher;
}

const MAX_REDIRECTS = 3;

/**
 * The bytes behind a bundle_url. The shared JSON client cannot serve here: it parses bodies, and
 * its callers add the API token. This GET is built with no Authorization header at all, and
 * redirects are followed by hand, each hop rebuilt the same way: the API token must never reach
 * the blob host, whatever its origin and wherever it redirects.
 */
export async function fetchBlob(url: string, o: BlobOptions): Promise<Buffer> {
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await withRetries(at, o);
    if (!('location' in res)) return res.bytes;
    const next = new URL(res.location, at).href;
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

type Answer = { bytes: Buffer } | { location: string };

async function withRetries(url: string, o: BlobOptions): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getOnce(url, o);
    } catch (err) {
      const status = err instanceof HttpClientError ? err.status : undefined;
      const transient = status === undefined ? isNetwork(err) : status >= 500 || status === 429;
      if (!transient || attempt >= o.retries || o.signal?.aborted) throw err;
      await sleep(100 * 2 ** attempt, undefined, { signal: o.signal }).catch(() => {
        throw err;
      });
    }
  }
}

const isNetwork = (err: unknown) =>
  err instanceof HttpClientError && err.code === 'SOURCE_UNREACHABLE';

async function getOnce(url: string, o: BlobOptions): Promise<Answer> {
  const where = describeUrl(url);
  const deadline = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: '*/*', 'user-agent': `gate/${VERSION}` },
      signal,
      ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
    });
    return await answer(res, where, o.maxBytes);
  } catch (err) {
    if (err instanceof HttpClientError) throw err;
    if (deadline.aborted && !o.signal?.aborted) {
      throw new HttpClientError('SOURCE_TIMEOUT', `${where} timed out`, { cause: err });
    }
    const code = String((err as { code?: unknown }).code ?? 'network error').toLowerCase();
    throw new HttpClientError('SOURCE_UNREACHABLE', `cannot reach ${where}: ${code}`, {
      cause: err,
    });
  }
}

async function answer(res: Dispatcher.ResponseData, where: string, max: number): Promise<Answer> {
  const status = res.statusCode;
  const location = res.headers.location;
  if (status >= 300 && status < 400 && typeof location === 'string') {
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    return { location };
  }
  if (status < 200 || status >= 300) {
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    throw new HttpClientError('SOURCE_BAD_RESPONSE', `${where} answered http ${status}`, {
      status,
    });
  }
  return { bytes: await readCapped(res, where, max) };
}

/** Counted while streaming: a blob host that never stops sending is cut off at the cap. */
async function readCapped(res: Dispatcher.ResponseData, where: string, max: number) {
  const tooLarge = () => {
    res.body.on('error', () => {});
    res.body.destroy();
    return new HttpClientError('SOURCE_TOO_LARGE', `${where} answered more than ${max} bytes`);
  };
  if (Number(res.headers['content-length'] ?? 0) > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > max) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
