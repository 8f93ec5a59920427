import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the server does instead of answering normally: an HTTP status (with an optional body),
 * a body that is not JSON, a next-page link to another origin, or no answer at all.
 */
export type StoreFault =
  | { status: number; body?: string; retryAfter?: string }
  | 'malformed-json'
  | 'offsite-link'
  | 'hang';

export interface StoreServer {
  /** http://127.0.0.1:<port>: the store's base URL, as a repository's API URL is on GitHub */
  url: string;
  /** serves these bundles for a digest ("sha256:<hex>"), each as `{bundle, ...}` */
  add(digest: string, ...bundles: unknown[]): void;
  /** serves these attestation entries as given, e.g. `{bundle: null, bundle_url: ...}` */
  addRaw(digest: string, ...entries: unknown[]): void;
  /**
   * where add/addRaw file what follows: '' (the root, the default), or a GitHub owner scope such
   * as '/repos/acme/app', '/orgs/acme', '/users/octo'; a scope only answers for its own entries
   */
  scope: string;
  /** attestations per page; changeable between requests */
  pageSize: number;
  fault: StoreFault | undefined;
  /** when set, requests without `Authorization: Bearer <token>` get 401 */
  requireToken: string | undefined;
  /** every request seen, in order */
  requests: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

const PATH =
  /^((?:\/repos\/[^/]+\/[^/]+|\/orgs\/[^/]+|\/users\/[^/]+)?)\/attestations\/((?:sha256|sha512):[0-9a-f]+)$/;

/**
 * A GitHub-attestations-compatible store on 127.0.0.1: GET /attestations/{digest}?page=N returns
 * `{attestations: [{bundle, repository_id, bundle_url}]}`, paginated with a GitHub-style `Link`
 * header (rel="next", rel="last"), and 404 when it holds nothing for the digest, as GitHub does.
 * The same under /repos/{owner}/{repo}, /orgs/{org} and /users/{user}, each with its own entries.
 * `?predicate_type=T` keeps the entries whose `predicate_type` is T: given in addRaw, or read from
 * the statement of a bundle given to add; next-page links keep the filter, as GitHub's do.
 */
export async function startStoreServer(opts: { pageSize?: number } = {}): Promise<StoreServer> {
  const held = new Map<string, unknown[]>();
  const state: StoreServer = {
    url: '',
    add: (digest, ...bundles) =>
      state.addRaw(digest, ...bundles.map((bundle) => ({ bundle, ...predicateOf(bundle) }))),
    addRaw: (digest, ...entries) => {
      const key = `${state.scope}${digest}`;
      const list = held.get(key) ?? [];
      list.push(
        ...entries.map((e, i) => ({
          repository_id: 1,
          bundle_url: null,
          id: list.length + i,
          ...(e as object),
        })),
      );
      held.set(key, list);
    },
    scope: '',
    pageSize: opts.pageSize ?? 30,
    fault: undefined,
    requireToken: undefined,
    requests: [],
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', state.url);
    state.requests.push({ path: `${url.pathname}${url.search}`, headers: req.headers });
    if (state.fault === 'hang') return;
    if (typeof state.fault === 'object') {
      const headers = state.fault.retryAfter ? { 'retry-after': state.fault.retryAfter } : {};
      res.writeHead(state.fault.status, headers).end(state.fault.body ?? '{"message":"fault"}');
      return;
    }
    if (state.requireToken && req.headers.authorization !== `Bearer ${state.requireToken}`) {
      return json(res, 401, { message: 'Bad credentials' });
    }
    const m = PATH.exec(url.pathname);
    const type = url.searchParams.get('predicate_type');
    const all = ((m && held.get(`${m[1]}${m[2]}`)) || []).filter(
      (e) => type === null || (e as { predicate_type?: unknown }).predicate_type === type,
    );
    if (req.method !== 'GET' || all.length === 0) return json(res, 404, { message: 'Not Found' });
    if (state.fault === 'malformed-json') return void res.writeHead(200).end('{"attestations": [');
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
    const last = Math.ceil(all.length / state.pageSize);
    const items = all.slice((page - 1) * state.pageSize, page * state.pageSize);
    const origin = state.fault === 'offsite-link' ? 'http://attacker.invalid' : state.url;
    const link = (p: number, rel: string) => {
      const q = new URLSearchParams(url.searchParams);
      q.set('page', String(p));
      return `<${origin}${url.pathname}?${q}>; rel="${rel}"`;
    };
    const links = page < last ? [link(page + 1, 'next'), link(last, 'last')] : [link(1, 'first')];
    json(res, 200, { attestations: items }, { link: links.join(', ') });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}

function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
    .end(JSON.stringify(body));
}

/** The predicate type a DSSE bundle's statement names, as GitHub records it on upload. */
function predicateOf(bundle: unknown): { predicate_type?: string } {
  try {
    const payload = (bundle as { dsseEnvelope?: { payload?: string } }).dsseEnvelope?.payload;
    const statement = JSON.parse(Buffer.from(payload ?? '', 'base64').toString('utf8'));
    return typeof statement.predicateType === 'string'
      ? { predicate_type: statement.predicateType }
      : {};
  } catch {
    return {};
  }
}
