import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * GitHub's bundle blob storage, as the attestations API points at it with `bundle_url`: a second
 * origin on 127.0.0.1 serving bytes at paths. It must never see the API token: any request with an
 * Authorization header is answered 400 and recorded in `authorizationSeen`, which the tests
 * assert stays empty.
 */
export interface BlobServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** serves `body` at `path` with status 200 */
  put(path: string, body: Buffer): void;
  /** answers `path` with a redirect to `location` */
  redirect(path: string, location: string): void;
  /** every request seen, in order */
  requests: { path: string; headers: IncomingHttpHeaders }[];
  /** the paths of requests that carried an Authorization header: must stay empty */
  authorizationSeen: string[];
  close(): Promise<void>;
}

export async function startBlobServer(): Promise<BlobServer> {
  const bodies = new Map<string, Buffer>();
  const redirects = new Map<string, string>();
  const state: BlobServer = {
    url: '',
    put: (path, body) => void bodies.set(path, body),
    redirect: (path, location) => void redirects.set(path, location),
    requests: [],
    authorizationSeen: [],
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    state.requests.push({ path, headers: req.headers });
    if (req.headers.authorization !== undefined) {
      state.authorizationSeen.push(path);
      return void res.writeHead(400).end('no credentials here');
    }
    const location = redirects.get(path);
    if (location) return void res.writeHead(302, { location }).end();
    const body = bodies.get(path);
    if (!body) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
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
