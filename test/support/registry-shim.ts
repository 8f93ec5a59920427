import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Descriptor } from './registry-push.js';

/**
 * A small front for the real registry, adding what crane's registry lacks:
 * - the OCI distribution spec 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`), built from
 *   the manifests with a `subject` PUT through the shim; paginated with a `Link: <...>;
 *   rel="next"` header when `pageSize` is set; the `artifactType` filter applied (and announced
 *   with `OCI-Filters-Applied`) unless `ignoreFilter`;
 * - optionally, the anonymous bearer-token flow: every /v2/ request without the token is a 401
 *   with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, and GET /token issues it.
 * Everything else is proxied to the registry unchanged.
 */
export interface ShimOptions {
  pageSize?: number;
  /** every referrers page links back to itself as the next page */
  loopPages?: boolean;
  /** the first N /v2/ requests are answered 429 with `Retry-After: 1` */
  throttle?: number;
  ignoreFilter?: boolean;
  auth?: boolean;
  /** descriptors to add to a subject's referrers list as given (e.g. one that lies) */
  extra?: Map<string, Descriptor[]>;
  /** flips the last byte of every blob served: content that does not match its digest */
  tamperBlobs?: boolean;
  /**
   * The repository is private: `basic`, every /v2/ request must carry the login as HTTP basic
   * auth (a 401 with a `Basic` challenge otherwise); `bearer`, the token flow, where GET /token
   * issues the token only to a request carrying the login as basic auth, or to a POST
   * `refresh_token` grant with `refreshToken` (POSTs answer 404 when `noOAuth`).
   */
  login?: {
    scheme: 'basic' | 'bearer';
    username: string;
    password: string;
    refreshToken?: string;
    noOAuth?: boolean;
  };
  /** every /v2/ request must carry this bearer token (a 401 `Bearer` challenge otherwise) */
  bearerToken?: string;
}

export interface RegistryShim {
  readonly url: string;
  readonly host: string;
  /** every request line seen, e.g. "GET /v2/app/referrers/sha256:..?artifactType=..." */
  readonly seen: string[];
  /** the Authorization header of each request in `seen` ("" without one) */
  readonly authorizations: string[];
  close(): Promise<void>;
}

const TOKEN = 'anonymous-pull-token';

export async function startShim(upstream: string, opts: ShimOptions = {}): Promise<RegistryShim> {
  const referrers = new Map<string, Descriptor[]>();
  const seen: string[] = [];
  const authorizations: string[] = [];
  let self = '';
  let throttled = 0;
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    authorizations.push(req.headers.authorization ?? '');
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', self);
    if (opts.login && url.pathname === '/token') return loginToken(req, url, res, opts.login);
    const need = required(opts);
    if (need && req.headers.authorization !== need.authorization) {
      return need.basic ? basicChallenge(res) : challenge(url, self, res);
    }
    if (opts.auth && url.pathname === '/token') return token(url, res);
    if (opts.auth && req.headers.authorization !== `Bearer ${TOKEN}`) {
      return challenge(url, self, res);
    }
    if (opts.throttle && throttled < opts.throttle && url.pathname.startsWith('/v2/')) {
      throttled++;
      return void res.writeHead(429, { 'retry-after': '1' }).end('slow down');
    }
    const m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) return listReferrers(m[1]!, m[2]!, url, res);
    const body = await readAll(req);
    const put = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url.pathname);
    if (req.method === 'PUT' && put) {
      const subject = remember(put[1]!, body, req.headers['content-type']);
      // distribution spec 1.1: the registry says it indexed the subject, so clients (oras,
      // cosign) do not also write the referrers tag schema's fallback tag
      if (subject) res.setHeader('oci-subject', subject);
    }
    const tamper = opts.tamperBlobs === true && /\/blobs\/sha/.test(url.pathname);
    return proxy(upstream, req, body, res, tamper);
  }
  function remember(repo: string, body: Buffer, contentType: string | undefined) {
    const m = JSON.parse(body.toString('utf8')) as {
      subject?: { digest: string };
      artifactType?: string;
      config?: { mediaType: string };
      annotations?: Record<string, string>;
    };
    if (!m.subject) return undefined;
    const key = `${repo}@${m.subject.digest}`;
    const d: Descriptor = {
      mediaType: contentType ?? 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(body),
      size: body.length,
      artifactType: m.artifactType ?? m.config?.mediaType ?? '',
      ...(m.annotations ? { annotations: m.annotations } : {}),
    };
    referrers.set(key, [...(referrers.get(key) ?? []), d]);
    return m.subject.digest;
  }
  function listReferrers(repo: string, digest: string, url: URL, res: ServerResponse) {
    let all = [...(referrers.get(`${repo}@${digest}`) ?? []), ...(opts.extra?.get(digest) ?? [])];
    const filter = url.searchParams.get('artifactType');
    const headers: Record<string, string> = {
      'content-type': 'application/vnd.oci.image.index.v1+json',
    };
    if (filter && !opts.ignoreFilter) {
      all = all.filter((d) => d.artifactType === filter);
      headers['oci-filters-applied'] = 'artifactType';
    }
    const size = opts.pageSize ?? all.length;
    const from = Number(url.searchParams.get('n_from') ?? 0);
    const page = all.slice(from, from + Math.max(size, 1));
    if (opts.loopPages) {
      // every page names the first one as the next: a client must notice the loop
      headers.link = `<${url.pathname}${url.search}>; rel="next"`;
    } else if (from + size < all.length) {
      const next = new URL(url);
      next.searchParams.set('n_from', String(from + size));
      headers.link = `<${next.pathname}${next.search}>; rel="next"`;
    }
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: page,
    };
    res.writeHead(200, headers).end(JSON.stringify(index));
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  self = `http://127.0.0.1:${port}`;
  return {
    url: self,
    host: `127.0.0.1:${port}`,
    seen,
    authorizations,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function token(url: URL, res: ServerResponse) {
  const scope = url.searchParams.get('scope') ?? '';
  if (!/^repository:[^:]+:pull$/.test(scope) || url.searchParams.get('service') !== 'shim') {
    res.writeHead(400).end('bad scope or service');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: TOKEN }));
}

const LOGIN_TOKEN = 'login-pull-token';
const basicOf = (l: { username: string; password: string }) =>
  `Basic ${Buffer.from(`${l.username}:${l.password}`).toString('base64')}`;

/** The Authorization a /v2/ request must carry under `login` or `bearerToken`. */
function required(opts: ShimOptions): { authorization: string; basic: boolean } | undefined {
  if (opts.login?.scheme === 'basic') return { authorization: basicOf(opts.login), basic: true };
  if (opts.login) return { authorization: `Bearer ${LOGIN_TOKEN}`, basic: false };
  if (opts.bearerToken) return { authorization: `Bearer ${opts.bearerToken}`, basic: false };
  return undefined;
}

async function loginToken(
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  login: NonNullable<ShimOptions['login']>,
) {
  let params = url.searchParams;
  let ok = req.headers.authorization === basicOf(login);
  if (req.method === 'POST') {
    if (login.noOAuth) return void res.writeHead(404).end('no oauth here');
    params = new URLSearchParams((await readAll(req)).toString('utf8'));
    ok =
      req.headers['content-type'] === 'application/x-www-form-urlencoded' &&
      params.get('grant_type') === 'refresh_token' &&
      login.refreshToken !== undefined &&
      params.get('refresh_token') === login.refreshToken;
  }
  const scope = params.get('scope') ?? '';
  if (!/^repository:[^:]+:pull$/.test(scope) || params.get('service') !== 'shim') {
    return void res.writeHead(400).end('bad scope or service');
  }
  if (!ok) return void res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  const body = req.method === 'POST' ? { access_token: LOGIN_TOKEN } : { token: LOGIN_TOKEN };
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function basicChallenge(res: ServerResponse) {
  res
    .writeHead(401, {
      'www-authenticate': 'Basic realm="shim"',
      'content-type': 'application/json',
    })
    .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
}

function challenge(url: URL, self: string, res: ServerResponse) {
  const repo = /^\/v2\/(.+?)\/(manifests|blobs|referrers|tags)\//.exec(url.pathname)?.[1];
  const scope = repo ? `,scope="repository:${repo}:pull"` : '';
  res
    .writeHead(401, {
      'www-authenticate': `Bearer realm="${self}/token",service="shim"${scope}`,
      'content-type': 'application/json',
    })
    .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
}

function proxy(
  upstream: string,
  req: IncomingMessage,
  body: Buffer,
  res: ServerResponse,
  tamper = false,
) {
  return new Promise<void>((resolve, reject) => {
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.authorization;
    const out = request(
      new URL(req.url ?? '/', upstream),
      { method: req.method, headers },
      (up) => {
        if (!tamper) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', resolve);
          return;
        }
        readAll(up).then((b) => {
          if (b.length > 0) b[b.length - 1] = b[b.length - 1]! ^ 1;
          res.writeHead(up.statusCode ?? 502, up.headers).end(b);
          resolve();
        }, reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function digestOf(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
