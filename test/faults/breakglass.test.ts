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
  sleep,
  writeConfig,
  type Faulty,
  type Fixture,
} from './support.js';

/**
 * Break glass while the webhook that must hear of it is down (or hangs): a real `gate check
 * --break-glass` still overrides the deny, records the override, and keeps the announcement in
 * its persisted outbox; once the webhook is back, the next gate to start (a plain `gate check`,
 * as the next CI job runs) delivers it, and it is delivered once. (`gate serve` also retries
 * every 30 s while it runs.)
 */
const APP = hex('faults: a hotfix with no provenance');

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

const plainCheck = (cfg: string) => [
  ...['check', '--config', cfg, '--subject', `sha256:${APP}`, '--env', 'dev'],
];
const breakGlass = (cfg: string, file: string) =>
  runGate([
    ...['check', '--config', cfg, '--subject', `sha256:${APP}`, '--env', 'dev'],
    ...['--break-glass', file, '--format', 'json'],
  ]);

describe('break glass while the webhook is', () => {
  it('down: the override is recorded and waits in the outbox; the next gate check delivers it once the webhook is back', async () => {
    const hookUrl = `${await closedPortUrl()}/hook`;
    const cfg = config('bg-down', hookUrl);
    // without the request the subject is denied: what break glass is for
    const denied = await runGate(plainCheck(cfg));
    expect(denied.code).toBe(1);
    const { file, requestId } = await request('down');
    const run = await breakGlass(cfg, file);
    const overridden = Date.now();
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

    // the webhook comes back on the same address: the next gate to start delivers what waits
    // in the outbox (here a plain `gate check`, as the next CI job runs it), once its backoff
    // after the failed attempt (1 s) has passed
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body) as Announcement);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => webhook!.listen(Number(new URL(hookUrl).port), '127.0.0.1', r));
    await sleep(Math.max(0, 1100 - (Date.now() - overridden)));
    const back = Date.now();
    const next = await runGate(plainCheck(cfg));
    reportFault(
      'check: break-glass announcement delivered by the next gate check after the webhook came back',
      received.length === 1 ? 'delivered' : 'pending',
      undefined,
      Date.now() - back,
    );
    expect([next.code, next.stderr]).toEqual([1, '']);
    expect(received).toEqual([message.body]);
    expect(outboxOf('bg-down').filter((l) => l.type === 'delivered')).toEqual([
      expect.objectContaining({ id: message.id }),
    ]);
    // delivered once: a later gate (a server this time) does not announce it again
    const serving = await startServe(cfg);
    await sleep(300);
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
    expect(received).toHaveLength(1);
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
