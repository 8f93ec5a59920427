import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttpClient,
  describeUrl,
  mapLimit,
  parseRetryAfter,
  type HttpClient,
} from '../../src/collect/http.js';

/** Each test runs its own node:http server on 127.0.0.1 with a handler that counts what it saw. */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
const clients: HttpClient[] = [];

async function serve(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function client(opts: Parameters<typeof createHttpClient>[0] = {}): HttpClient {
  const c = createHttpClient({ backoffMs: 5, timeoutMs: 2_000, ...opts });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

const json = (res: ServerResponse, status: number, body: unknown, headers = {}) =>
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify(body));

/** Resolves with the GateError a promise rejects with. */
async function failure(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string; status?: number };
  }
  throw new Error('expected a rejection');
}

describe('retries', () => {
  it('retries 5xx and succeeds, counting attempts', async () => {
    let attempts = 0;
    const { url } = await serve((_req, res) =>
      ++attempts < 3 ? json(res, 503, {}) : json(res, 200, { ok: true }),
    );
    await expect(client().getJSON(`${url}/x`)).resolves.toEqual({ ok: true });
    expect(attempts).toBe(3);
  });

  it('gives up after `retries` extra attempts with SOURCE_BAD_RESPONSE and the status', async () => {
    let attempts = 0;
    const { url } = await serve((_req, res) => (attempts++, json(res, 500, {})));
    const err = await failure(client({ retries: 2 }).getJSON(`${url}/x?token=s3cret`));
    expect(attempts).toBe(3);
    expect(err).toMatchObject({ code: 'SOURCE_BAD_RESPONSE', status: 500 });
    expect(err.message).toBe(`${url}/x?… answered http 500`);
    expect(err.message).not.toContain('s3cret');
  });

  it('honours Retry-After on 429', async () => {
    const times: number[] = [];
    const { url } = await serve((_req, res) => {
      times.push(Date.now());
      if (times.length === 1) json(res, 429, {}, { 'retry-after': '1' });
      else json(res, 200, { n: times.length });
    });
    await expect(client({ backoffMs: 1 }).getJSON(url)).resolves.toEqual({ n: 2 });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it('cuts a long Retry-After to the cap', async () => {
    let attempts = 0;
    const { url } = await serve((_req, res) =>
      ++attempts === 1 ? json(res, 429, {}, { 'retry-after': '3600' }) : json(res, 200, {}),
    );
    const started = Date.now();
    await client({ maxRetryAfterMs: 50 }).getJSON(url);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('never retries another 4xx', async () => {
    let attempts = 0;
    const { url } = await serve(
      (_req, res) => (attempts++, json(res, 404, { message: 'Not Found' })),
    );
    expect(await failure(client().getJSON(url))).toMatchObject({
      code: 'SOURCE_BAD_RESPONSE',
      status: 404,
    });
    expect(attempts).toBe(1);
  });

  it('retries a dropped connection (ECONNRESET)', async () => {
    let attempts = 0;
    const { url } = await serve((req, res) =>
      ++attempts === 1 ? req.socket.destroy() : json(res, 200, [1]),
    );
    await expect(client().getJSON(url)).resolves.toEqual([1]);
    expect(attempts).toBe(2);
  });
});

describe('per-request policy', () => {
  it('a request may set its own retries and backoff over the client defaults', async () => {
    let attempts = 0;
    const { url } = await serve((_req, res) => (attempts++, json(res, 503, {})));
    const c = client({ retries: 5 });
    const err = await failure(c.getJSON(url, { retries: 1, backoffMs: 1 }));
    expect(err).toMatchObject({ code: 'SOURCE_BAD_RESPONSE', status: 503 });
    expect(attempts).toBe(2);
  });

  it('a request may set its own timeout and Retry-After cap', async () => {
    const { url } = await serve(() => {});
    const err = await failure(client({ timeoutMs: 5_000 }).getJSON(url, { timeoutMs: 100 }));
    expect(err.message).toMatch(/timed out after 100 ms/);
    let attempts = 0;
    const slow = await serve((_req, res) =>
      ++attempts === 1 ? json(res, 429, {}, { 'retry-after': '3600' }) : json(res, 200, {}),
    );
    const started = Date.now();
    await client().getJSON(slow.url, { maxRetryAfterMs: 20 });
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('failures', () => {
  it('times out a server that never answers with SOURCE_TIMEOUT', async () => {
    const { url } = await serve(() => {});
    const started = Date.now();
    const err = await failure(client({ timeoutMs: 200 }).getJSON(url));
    expect(err.code).toBe('SOURCE_TIMEOUT');
    expect(err.message).toMatch(/timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('times out a body that stalls after the headers', async () => {
    const { url } = await serve((_req, res) => res.writeHead(200).write('{"a":'));
    expect((await failure(client({ timeoutMs: 200 }).getJSON(url))).code).toBe('SOURCE_TIMEOUT');
  });

  it('aborts a body that never ends at the size cap with SOURCE_TOO_LARGE', async () => {
    let sent = 0;
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const err = await failure(
      client({ timeoutMs: 10_000 }).getJSON(url, { maxBytes: 1024 * 1024 }),
    );
    expect(err.code).toBe('SOURCE_TOO_LARGE');
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a declared Content-Length over the cap before reading', async () => {
    const { url } = await serve((_req, res) =>
      res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000)),
    );
    expect((await failure(client().getJSON(url, { maxBytes: 100 }))).code).toBe('SOURCE_TOO_LARGE');
  });

  it('rejects malformed json with SOURCE_BAD_RESPONSE, without retrying', async () => {
    let attempts = 0;
    const { url } = await serve((_req, res) => (attempts++, res.writeHead(200).end('<html>')));
    const err = await failure(client().getJSON(url));
    expect(err.code).toBe('SOURCE_BAD_RESPONSE');
    expect(err.message).toMatch(/malformed json/);
    expect(attempts).toBe(1);
  });

  it('reports a closed port as SOURCE_UNREACHABLE', async () => {
    const { url, server } = await serve(() => {});
    await new Promise((r) => server.close(r));
    const err = await failure(client().getJSON(`${url}/x`));
    expect(err.code).toBe('SOURCE_UNREACHABLE');
    expect(err.message).toBe(`cannot reach ${url}/x: econnrefused`);
  });

  it('refuses a non-http url', async () => {
    expect((await failure(client().getJSON('file:///etc/passwd'))).code).toBe('SOURCE_UNREACHABLE');
  });

  it('reports a cancelled request as SOURCE_TIMEOUT', async () => {
    const { url } = await serve(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await failure(client().getJSON(url, { signal: ac.signal }));
    expect(err).toMatchObject({
      code: 'SOURCE_TIMEOUT',
      message: `request to ${url} was cancelled`,
    });
  });
});

describe('connections', () => {
  it('bounds the requests in flight', async () => {
    let inFlight = 0;
    let max = 0;
    const { url } = await serve((_req, res) => {
      max = Math.max(max, ++inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, {});
      }, 30);
    });
    const c = client({ concurrency: 3 });
    await Promise.all(Array.from({ length: 12 }, () => c.getJSON(url)));
    expect(max).toBe(3);
  });

  it('reuses one kept-alive socket for sequential requests', async () => {
    const sockets = new Set<unknown>();
    const { url } = await serve((req, res) => (sockets.add(req.socket), json(res, 200, {})));
    const c = client();
    for (let i = 0; i < 10; i++) await c.getJSON(`${url}/${i}`);
    expect(sockets.size).toBe(1);
  });

  it('posts json and sends the configured and per-request headers', async () => {
    let seen: { method?: string; body?: string; headers?: IncomingMessage['headers'] } = {};
    const { url } = await serve((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen = { method: req.method, body, headers: req.headers };
        json(res, 201, { created: true }, { link: '<a>; rel="next"' });
      });
    });
    const c = client({ headers: { 'x-gate': 'yes' } });
    const res = await c.requestJSON('POST', url, {
      body: { q: 1 },
      headers: { authorization: 'Bearer t' },
    });
    expect(res).toEqual({
      status: 201,
      headers: expect.objectContaining({ link: '<a>; rel="next"' }),
      body: { created: true },
    });
    expect(seen.method).toBe('POST');
    expect(JSON.parse(seen.body!)).toEqual({ q: 1 });
    expect(seen.headers).toMatchObject({
      'x-gate': 'yes',
      authorization: 'Bearer t',
      'content-type': 'application/json',
    });
    await expect(c.postJSON(url, [])).resolves.toEqual({ created: true });
  });
});

describe('helpers', () => {
  it('parses Retry-After as seconds or an http-date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('maps with bounded concurrency, keeping the input order', async () => {
    let inFlight = 0;
    let max = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n, i) => {
      max = Math.max(max, ++inFlight);
      await new Promise((r) => setTimeout(r, n * 5));
      inFlight--;
      return `${i}:${n}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3']);
    expect(max).toBe(2);
    await expect(mapLimit([], 3, async () => 1)).resolves.toEqual([]);
  });

  it('keeps userinfo and query out of messages', () => {
    expect(describeUrl('https://u:p@api.example/a/b?token=x')).toBe('https://api.example/a/b?…');
  });

  it('names a url without a web origin by its scheme, not as "null"', () => {
    expect(describeUrl('file:///etc/passwd')).toBe('file:///etc/passwd');
    expect(describeUrl('ftp://u:p@host.example/x')).toBe('ftp://host.example/x');
  });
});
