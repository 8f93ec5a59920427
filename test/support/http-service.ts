import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HandlerFn } from '@sigstore/mock';

export interface HttpService {
  /** http://127.0.0.1:<port>, no trailing slash */
  url: string;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Serves @sigstore/mock-style handlers (POST path -> fn(body)) over real HTTP on an ephemeral
 * 127.0.0.1 port, so clients exercise a genuine network round trip instead of nock interception.
 * `beforeRequest` runs first on every request (used to advance the services' clocks).
 */
/** A @sigstore/mock handler, also given the request's headers (Fulcio reads a bearer token). */
export type Handler = (body: string, headers: IncomingHttpHeaders) => ReturnType<HandlerFn>;

export async function serveHandlers(
  routes: Record<string, Handler>,
  beforeRequest: () => void = () => {},
  /** headers a real service sends with an answer (Rekor's ETag and Location, for one) */
  headersFor: (statusCode: number, payload: Buffer) => Record<string, string> = () => ({}),
): Promise<HttpService> {
  const server = createServer((req, res) => {
    const fn = req.method === 'POST' ? routes[(req.url ?? '').split('?')[0] ?? ''] : undefined;
    if (!fn) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    readBody(req)
      .then((body) => {
        beforeRequest();
        return fn(body, req.headers);
      })
      .then(({ statusCode, response, contentType }) => {
        const payload =
          typeof response === 'string'
            ? Buffer.from(response, 'utf8')
            : Buffer.from(response.buffer, response.byteOffset, response.byteLength);
        res
          .writeHead(statusCode, {
            'content-type': contentType ?? 'text/plain',
            ...headersFor(statusCode, payload),
          })
          .end(payload);
      })
      .catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // fetch keeps connections alive; drop them so close() does not wait for their timeout.
        server.closeAllConnections();
      }),
  };
}
