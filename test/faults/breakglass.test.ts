import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import { mintDSSEBundle } from '../support/mint.js';
import { reportFault } from './report.js';
import {
  closedPortUrl,
  DEADLINE_MS,
  hex,
  killChildren,
  readLedger,
  runGate,
  START_MARGIN_MS,
  startFaulty,
  startFixture,
  startServe,
  writeConfig,
  type Faulty,
  type Fixture,
} from './support.js';

/**
 * Break glass while the webhook that must hear of it is down (or hangs): a real `gate check
 * --break-glass` still overrides the deny, records the override, and keeps the announcement in
 * its persisted outbox; once the webhook is back, a real `gate serve` sharing that outbox
 * delivers it (its retry pass runs every 30 s), and it is delivered once.
 */
const APP = hex('faults: a hotfix with no provenance');
const OUTBOX_RETRY_MS = 30_000;

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
const keyId = createHash('sha256')
  .update(createPublicKey(pem).export({ format: 'der', type: 'spki' }))
  .digest('base64');

let fx: Fixture;
let webhook: Server | undefined;
interface Announcement {
  text?: string;
  decision?: { id: string; outcome: string; override?: { requestId: string } };
}
const received: Announcement[] = [];
const faulty: Faulty[] = [];

beforeAll(async () => {
  fx = await startFixture();
});
afterAll(async () => {
  killChildren();
  webhook?.closeAllConnections();
  await new Promise((r) => (webhook ? webhook.close(r) : r(undefined)));
  await Promise.all(faulty.map((f) => f.close()));
  await fx?.close();
});

function config(name: string, hookUrl: string): string {
  return writeConfig(fx, fx.dir, `${name}.yaml`, {
    keys: [{ pem }],
    policy: {
      path: fx.policy,
      config: {
        break_glass: {
          environments: { dev: { requesters: [{ key_id: keyId }], max_expiry_minutes: 60 } },
        },
      },
    },
    notify: { webhooks: [{ url: hookUrl }], outbox: path.join(fx.dir, `${name}.outbox.jsonl`) },
  });
}

/** A break-glass request for APP in dev, signed with the requester's key, as a bundle file. */
async function request(name: string): Promise<{ file: string; requestId: string }> {
  const requestId = `req-${name}`;
  const statement = breakGlassStatement({
    subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
    environment: 'dev',
    justification: 'checkout is down, the fix must ship now',
    ticket: 'INC-12',
    requester: keyId,
    expiresInMinutes: 30,
    now: new Date(),
    requestId,
  });
  const m = await mintDSSEBundle(fx.svc, { statement, version: '0.3', signer: 'key', privateKey });
  const file = path.join(fx.dir, `${name}.sigstore.json`);
  writeFileSync(file, JSON.stringify(m.bundle));
  return { file, requestId };
}

interface OutboxLine {
  type: 'message' | 'attempt' | 'delivered';
  id: string;
  error?: string;
  body?: Announcement;
}
const outboxOf = (name: string): OutboxLine[] =>
  readFileSync(path.join(fx.dir, `${name}.outbox.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as OutboxLine);

const breakGlass = (cfg: string, file: string) =>
  runGate([
    ...['check', '--config', cfg, '--subject', `sha256:${APP}`, '--env', 'dev'],
    ...['--break-glass', file, '--format', 'json'],
  ]);

// the two run side by side: the first waits half a minute for gate serve's retry pass
describe.concurrent('break glass while the webhook is', () => {
  it('down: the override is recorded and waits in the outbox; gate serve delivers it once the webhook is back', async () => {
    const hookUrl = `${await closedPortUrl()}/hook`;
    const cfg = config('bg-down', hookUrl);
    // without the request the subject is denied: what break glass is for
    const denied = await runGate([
      ...['check', '--config', cfg, '--subject', `sha256:${APP}`, '--env', 'dev'],
    ]);
    expect(denied.code).toBe(1);
    const { file, requestId } = await request('down');
    const run = await breakGlass(cfg, file);
    reportFault(
      'check: break glass, webhook down',
      run.decision?.outcome ?? `exit ${run.code}`,
      run.decision?.error?.code,
      run.ms,
    );
    expect(run.stderr).toBe('');
    expect([run.code, run.decision?.outcome]).toEqual([0, 'override']);
    expect(run.decision!.override).toMatchObject({ requestId, overridden: ['test.provenance'] });
    expect(run.ms).toBeLessThan(DEADLINE_MS + START_MARGIN_MS);
    const recorded = await readLedger(cfg);
    expect(recorded.ok).toBe(true);
    expect(recorded.outcomes.get(run.decision!.id)).toBe('override');
    // the announcement is kept, with the attempt that failed; nothing was delivered
    const lines = outboxOf('bg-down');
    const message = lines.find((l) => l.type === 'message')!;
    expect(message.body?.decision).toMatchObject({
      id: run.decision!.id,
      outcome: 'override',
      override: { requestId },
    });
    expect(lines.filter((l) => l.type === 'attempt')).toEqual([
      expect.objectContaining({ id: message.id, error: 'unreachable' }),
    ]);
    expect(lines.some((l) => l.type === 'delivered')).toBe(false);

    // the webhook comes back on the same address; a gate serve sharing the outbox delivers it
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body) as Announcement);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => webhook!.listen(Number(new URL(hookUrl).port), '127.0.0.1', r));
    const back = Date.now();
    const serving = await startServe(cfg);
    try {
      await expect
        .poll(() => received.length, { timeout: OUTBOX_RETRY_MS + 10_000, interval: 200 })
        .toBe(1);
    } finally {
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exited).code).toBe(0);
    reportFault(
      'serve: break-glass announcement delivered after the webhook came back',
      'delivered',
      undefined,
      Date.now() - back,
    );
    expect(received[0]).toEqual(message.body);
    expect(outboxOf('bg-down').filter((l) => l.type === 'delivered')).toEqual([
      expect.objectContaining({ id: message.id }),
    ]);
  }, 60_000);

  it('hanging: the override is answered and recorded; the process waits for the webhook at most its timeout', async () => {
    const hook = await startFaulty('hang');
    faulty.push(hook);
    const cfg = config('bg-hang', `${hook.url}/hook`);
    const { file, requestId } = await request('hang');
    const run = await breakGlass(cfg, file);
    reportFault(
      'check: break glass, webhook hanging',
      run.decision?.outcome ?? `exit ${run.code}`,
      run.decision?.error?.code,
      run.ms,
    );
    expect([run.code, run.decision?.outcome]).toEqual([0, 'override']);
    expect(run.decision!.override).toMatchObject({ requestId });
    expect(hook.hits).toBe(1);
    // the outbox's post times out after 5 s; the process exits then, with the attempt noted
    expect(run.ms).toBeLessThan(5000 + START_MARGIN_MS);
    expect((await readLedger(cfg)).outcomes.get(run.decision!.id)).toBe('override');
    const lines = outboxOf('bg-hang');
    expect(lines.filter((l) => l.type === 'attempt').map((l) => l.error)).toEqual(['timeout']);
    expect(lines.some((l) => l.type === 'delivered')).toBe(false);
  }, 30_000);
});
