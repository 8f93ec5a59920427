import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.js';

describe('gate trust refresh', () => {
  let server: Server;
  let url: string;
  const tmp = mkdtempSync(path.join(tmpdir(), 'gate-tuf-'));

  beforeAll(async () => {
    // A mirror that answers every request with a server error: TUF cannot refresh.
    server = createServer((_req, res) => {
      res.writeHead(503).end('unavailable');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fails with a coded error, exit 2 and no file when the mirror is unreachable', async () => {
    const out = path.join(tmp, 'root.json');
    const res = await cli([
      'trust',
      'refresh',
      '--out',
      out,
      '--mirror-url',
      'http://127.0.0.1:9',
      '--cache',
      path.join(tmp, 'c1'),
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^gate: TRUST_ROOT_UNAVAILABLE: tuf refresh failed: /);
    expect(existsSync(out)).toBe(false);
  });

  it('fails closed when the tuf root is not a tuf root, even though the mirror answers', async () => {
    const out = path.join(tmp, 'root2.json');
    const tufRoot = new URL(
      '../fixtures/sigstore-js/bundles/bundleV03-dsse.sigstore',
      import.meta.url,
    ).pathname;
    const res = await cli([
      'trust',
      'refresh',
      '--out',
      out,
      '--mirror-url',
      url,
      '--tuf-root',
      tufRoot,
      '--cache',
      path.join(tmp, 'c2'),
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^gate: TRUST_ROOT_UNAVAILABLE: /);
    expect(existsSync(out)).toBe(false);
  });
});
