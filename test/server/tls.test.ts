import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalise } from '../../src/config.js';
import { GateError } from '../../src/errors.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { readTlsPair, reloadTlsOnChange } from '../../src/server/tls.js';
import { DIGEST, fakeGate } from './fake-gate.js';
import { mintServerCert, presentedFingerprint, type MintedCert } from './tls-certs.js';

/**
 * Issue 8, item 9: https with certificates that rotate under a running server (as cert-manager
 * rotates them), over real sockets; token-guarded routes refused over plain http beyond loopback.
 */
let dir: string;
let a: MintedCert;
let b: MintedCert;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-tls-'));
  a = mintServerCert(dir, 'a');
  b = mintServerCert(dir, 'b');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The files the server is pointed at, like a mounted secret: tls.crt and tls.key. */
function install(cert: MintedCert, what: 'both' | 'cert' | 'key' = 'both') {
  const files = { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
  if (what !== 'key') copyFileSync(cert.cert, files.cert);
  if (what !== 'cert') copyFileSync(cert.key, files.key);
  return files;
}

async function until(cond: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('https with rotating certificates', () => {
  it('serves https and presents a rotated certificate on new connections, without a restart', async () => {
    const files = install(a);
    const pair = readTlsPair(files);
    const server = createServer({ gate: fakeGate(), tls: pair });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const reloader = reloadTlsOnChange(server, files, pair, { intervalMs: 50 });
    try {
      const port = (server.server.address() as AddressInfo).port;
      const ca = [a.pem, b.pem];
      expect(await presentedFingerprint(port, ca)).toBe(a.fingerprint);
      const agent = new Agent({ connect: { ca: a.pem, servername: 'localhost' } });
      const res = await request(`https://127.0.0.1:${port}/healthz`, { dispatcher: agent });
      expect(await res.body.json()).toEqual({ status: 'ok' });
      await agent.close();

      install(b);
      await until(async () => (await presentedFingerprint(port, ca)) === b.fingerprint);
      const plain = await request(`http://127.0.0.1:${port}/healthz`).catch((e: Error) => e);
      expect(plain).toBeInstanceOf(Error);
    } finally {
      reloader.stop();
      await server.close();
    }
  });

  it('keeps the old pair through a half-written rotation and takes the new one once whole', async () => {
    const files = install(a);
    const pair = readTlsPair(files);
    const server = createServer({ gate: fakeGate(), tls: pair });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const errors: GateError[] = [];
    const reloader = reloadTlsOnChange(server, files, pair, {
      intervalMs: 3_600_000,
      onError: (e) => errors.push(e),
    });
    try {
      const port = (server.server.address() as AddressInfo).port;
      const ca = [a.pem, b.pem];
      install(b, 'cert');
      expect(await reloader.check()).toBe(false);
      expect(errors.map((e) => e.code)).toEqual(['CONFIG_INVALID']);
      expect(errors[0]!.message).toMatch(/do not make a usable pair/);
      expect(await presentedFingerprint(port, ca)).toBe(a.fingerprint);
      install(b, 'key');
      expect(await reloader.check()).toBe(true);
      expect(await presentedFingerprint(port, ca)).toBe(b.fingerprint);
      expect(await reloader.check()).toBe(false);
    } finally {
      reloader.stop();
      await server.close();
    }
  });

  it('refuses a key that does not match the certificate at start, with CONFIG_INVALID', () => {
    install(a);
    const files = install(b, 'key');
    expect(() => readTlsPair(files)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => readTlsPair({ cert: path.join(dir, 'none.crt'), key: files.key })).toThrow(
      expect.objectContaining({ code: 'INPUT_UNREADABLE' }),
    );
  });
});

describe('token-guarded routes beyond loopback', () => {
  const tokens = { audit: ['audit-token'], decisions: ['ci-token'] };
  const call = async (opts: Partial<ServerOptions>, url: string, token?: string) => {
    const gate = fakeGate();
    const config = normalise({ ledger: { path: path.join(dir, 'ledger.db') } }, dir, 'digest');
    const app = createServer({ gate, tokens, config, ...opts });
    const res = await app.inject({
      method: url.startsWith('/v1/audit') ? 'GET' : 'POST',
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(url.startsWith('/v1/audit')
        ? {}
        : { payload: { subjects: [DIGEST], environment: 'dev' } }),
    });
    await app.close();
    return { res, gate };
  };

  it('refuses them over plain http with 403 TLS_REQUIRED, even with the right token', async () => {
    for (const [url, token] of [
      ['/v1/audit/decisions', 'audit-token'],
      ['/v1/decisions', 'ci-token'],
    ] as const) {
      const { res, gate } = await call({ exposed: true }, url, token);
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('TLS_REQUIRED');
      expect(gate.calls).toHaveLength(0);
    }
  });

  it('checks tokens as usual with tls, or on loopback', async () => {
    const tls = readTlsPair(install(a));
    const withTls = await call({ exposed: true, tls }, '/v1/decisions', 'ci-token');
    expect(withTls.res.statusCode).toBe(200);
    const noToken = await call({ exposed: true, tls }, '/v1/decisions');
    expect(noToken.res.statusCode).toBe(401);
    const loopback = await call({}, '/v1/decisions', 'ci-token');
    expect(loopback.res.statusCode).toBe(200);
  });

  it('keeps the admission route reachable without a token (the API server calls it)', async () => {
    const app = createServer({ gate: fakeGate(), tokens, exposed: true });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/admission/dev',
      payload: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', kind: { kind: 'Pod' }, operation: 'DELETE' },
      },
    });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.json().response).toEqual({ uid: 'u', allowed: true });
  });
});
