import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import { normalise } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { createOutbox } from '../../src/notify/outbox.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The gate itself retries announcements a webhook did not take (not only `gate serve`), and
 * stops when it is closed. The webhook is a real HTTP server on 127.0.0.1, down at first.
 */
const APP = createHash('sha256').update('announced app').digest('hex');
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
const keyId = createHash('sha256')
  .update(createPublicKey(pem).export({ format: 'der', type: 'spki' }))
  .digest('base64');

let svc: LocalSigstore;
let trust: Trust;
let dir: string;
let port: number;
let server: Server | undefined;
const received: unknown[] = [];

async function webhookUp(): Promise<void> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
}

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-retries-'));
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await svc.close();
});

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return what();
}

describe('announcements a webhook did not take', () => {
  it('are delivered by the gate once the webhook is back, and no longer tried once it is closed', async () => {
    const url = `http://127.0.0.1:${port}/hook`;
    const outbox = createOutbox({
      file: path.join(dir, 'outbox.jsonl'),
      webhooks: [{ url }],
      backoffMs: 10,
      timeoutMs: 1_000,
    });
    const config = normalise(
      {
        keys: [{ pem }],
        policy: {
          path: path.join(FIXTURES, 'policies', 'requires-provenance'),
          config: {
            break_glass: {
              environments: { dev: { requesters: [{ key_id: keyId }], max_expiry_minutes: 60 } },
            },
          },
        },
        ledger: { path: path.join(dir, 'ledger.db') },
      },
      dir,
      'test-config',
    );
    const gate = await createGate(config, { trust, sources: () => [], outbox, outboxRetryMs: 50 });
    const statement = breakGlassStatement({
      subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
      environment: 'dev',
      justification: 'customer outage, fix must ship now',
      ticket: 'INC-11',
      requester: keyId,
      expiresInMinutes: 30,
      now: new Date(),
    });
    const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'key', privateKey });
    const d = await gate.check({
      subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
      environment: 'dev',
      breakGlass: [{ source: 'test', bytes: Buffer.from(JSON.stringify(m.bundle)) }],
    });
    expect(d.outcome).toBe('override');
    // the webhook is down: the announcement waits in the outbox
    await new Promise((r) => setTimeout(r, 150));
    expect(received).toHaveLength(0);
    await webhookUp();
    expect(await until(() => received.length === 1, 5_000)).toBe(true);

    await gate.close();
    outbox.enqueue({ text: 'after close' });
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toHaveLength(1);
  });
});
