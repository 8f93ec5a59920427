import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { Decision } from '../../src/decision.js';
import {
  approvedRequest,
  hex,
  podReview,
  workloadReview,
  writeConfig,
} from '../breakglass/support.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Break glass as the on-call engineer uses it, end to end: a real `gate serve` process (real
 * HTTP on 127.0.0.1, a real SQLite ledger, the requires-provenance policy, which denies the app:
 * it has no provenance). A signed and approved request is posted; a Pod annotated with its id is
 * admitted by override; so are a Deployment, its ReplicaSet and each of its Pods, all under the
 * one request (reuse: until_expiry), each a recorded override naming it and announced through
 * the outbox before its answer. `gate check --break-glass-id` and POST /v1/decisions use it too;
 * `gate break-glass revoke` (another process, the same ledger) and DELETE end requests, after
 * which nothing is admitted by them. The ledger, break-glass records and all, verifies.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const APP = hex('break-glass served app');
const SIDECAR = hex('break-glass served sidecar');
const TOKEN = 'on-call-token';

let svc: LocalSigstore;
let child: ChildProcess | undefined;
let base: string;
let cfg: ReturnType<typeof writeConfig>;
let outbox: string;

/** `gate` as a user runs it, from the sources. */
function gate(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = gate(args);
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (d) => (stdout += String(d)));
  c.stderr!.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve) => c.on('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  svc = await startLocalSigstore();
  // the webhook is down: announcements wait in the persisted outbox, which is what is checked
  cfg = writeConfig(svc, {
    // the pods' images are not in any registry: only the (empty) configured sources count
    sources: { oci: { searchImageRepository: false } },
    notify: { webhooks: [{ url: 'http://127.0.0.1:9/hook' }], outbox: 'outbox.jsonl' },
  });
  outbox = path.join(cfg.dir, 'outbox.jsonl');
  child = gate(['serve', '--config', cfg.file, '--port', '0'], { GATE_TOKEN_BREAK_GLASS: TOKEN });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<void>((r) => child!.on('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    }, 50);
    void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
    setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000).unref();
    void exited.finally(() => clearInterval(timer));
  });
  base = `http://127.0.0.1:${port}`;
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.on('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await svc?.close();
});

async function call(method: 'POST' | 'DELETE', url: string, body?: unknown, token?: string) {
  const res = await request(`${base}${url}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as any };
}

interface Answer {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

const admit = async (review: object): Promise<Answer> =>
  (await call('POST', '/v1/admission/production?timeout=10s', review)).body.response;

/** The recorded decision, read through a connection of its own. */
async function recorded(id: string): Promise<Decision> {
  const l = createSqliteLedger({ path: cfg.ledger });
  try {
    return (await l.get(id))!.decision;
  } finally {
    await l.close();
  }
}

/** The override decisions announced in the outbox (each written before its answer). */
function announced(): string[] {
  if (!existsSync(outbox)) return [];
  return readFileSync(outbox, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { type: string; body?: { decision?: { id: string } } })
    .filter((l) => l.type === 'message' && l.body?.decision)
    .map((l) => l.body!.decision!.id);
}

/** Admitted as an override naming the request: answered, recorded, announced. */
async function expectOverride(answer: Answer, requestId: string) {
  expect(answer.allowed).toBe(true);
  expect(answer.auditAnnotations).toMatchObject({ 'break-glass': requestId });
  expect(answer.warnings?.[0]).toContain(`break-glass override, request ${requestId}`);
  const d = await recorded(answer.auditAnnotations!.decision!);
  expect(d.outcome).toBe('override');
  expect(d.override).toMatchObject({ requestId, reuse: 'until_expiry' });
  expect(d.override!.overridden).toContain('test.provenance');
  expect(announced()).toContain(d.id);
  return d;
}

describe('break glass through a real gate serve', () => {
  let requestId: string;

  it('stores a posted request (201) and admits a Pod annotated with its id by override', async () => {
    const r = await approvedRequest(svc, [APP, SIDECAR]);
    const posted = await call('POST', '/v1/break-glass', { bundles: r.bundles }, TOKEN);
    expect(posted).toMatchObject({ status: 201, body: { requestId: r.id } });
    requestId = r.id;
    // without the annotation the app is denied
    const plain = await admit(podReview('plain-pod', [APP]));
    expect(plain.allowed).toBe(false);
    expect(plain.status!.message).toContain('test.provenance');
    await expectOverride(
      await admit(podReview('pod-1', [APP, SIDECAR], { 'gate.dev/break-glass': requestId })),
      requestId,
    );
  });

  it('admits a Deployment, its ReplicaSet and every Pod under the one request, each a recorded override', async () => {
    const annotations = { 'gate.dev/break-glass': requestId };
    const reviews = [
      workloadReview('shop', 'Deployment', [APP], annotations),
      workloadReview('shop-7d9f', 'ReplicaSet', [APP], annotations),
      ...['a1', 'b2', 'c3'].map((s) => podReview(`shop-7d9f-${s}`, [APP], annotations)),
    ];
    const ids = new Set<string>();
    for (const review of reviews) {
      const d = await expectOverride(await admit(review), requestId);
      ids.add(d.id);
    }
    expect(ids.size).toBe(5);
    // and the Pods again, as after a restart
    await expectOverride(await admit(reviews[2]!), requestId);
  });

  it('a Pod running an image the request does not name is denied, and told why', async () => {
    const other = hex('break-glass served other');
    const answer = await admit(
      podReview('stowaway', [APP, other], { 'gate.dev/break-glass': requestId }),
    );
    expect(answer.allowed).toBe(false);
    expect(answer.status!.message).toContain(
      `break-glass request ${requestId} refused: BREAK_GLASS_WRONG_SUBJECT`,
    );
    const d = await recorded(answer.auditAnnotations!.decision!);
    expect(d.breakGlassRefused?.[0]).toMatchObject({
      requestId,
      code: 'BREAK_GLASS_WRONG_SUBJECT',
    });
  });

  it('POST /v1/decisions and gate check --break-glass-id use the stored request', async () => {
    const viaHttp = await call('POST', '/v1/decisions', {
      subjects: [`sha256:${APP}`],
      environment: 'production',
      breakGlass: requestId,
    });
    expect(viaHttp.status).toBe(200);
    expect(viaHttp.body).toMatchObject({ outcome: 'override', override: { requestId } });
    expect(announced()).toContain(viaHttp.body.id);
    const viaCli = await run([
      ...['check', '--config', cfg.file, '--subject', `sha256:${APP}`, '--env', 'production'],
      ...['--break-glass-id', requestId, '--format', 'json'],
    ]);
    expect(viaCli.code).toBe(0);
    const d = JSON.parse(viaCli.stdout) as Decision;
    expect(d).toMatchObject({ outcome: 'override', override: { requestId } });
    expect(announced()).toContain(d.id);
  }, 60_000);

  it('gate break-glass revoke (another process, the same ledger) ends it: nothing is admitted by it after', async () => {
    const revoked = await run(['break-glass', 'revoke', requestId, '--config', cfg.file]);
    expect([revoked.code, revoked.stderr]).toEqual([0, '']);
    expect(revoked.stdout).toContain(`revoked break-glass request ${requestId}`);
    const answer = await admit(podReview('late', [APP], { 'gate.dev/break-glass': requestId }));
    expect(answer.allowed).toBe(false);
    expect(answer.status!.message).toContain(
      `break-glass request ${requestId} refused: BREAK_GLASS_REVOKED`,
    );
    const again = await run(['break-glass', 'revoke', requestId, '--config', cfg.file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('BREAK_GLASS_REVOKED');
  }, 60_000);

  it('DELETE /v1/break-glass/ID ends another request the same way', async () => {
    const r = await approvedRequest(svc, [APP]);
    expect((await call('POST', '/v1/break-glass', { bundles: r.bundles }, TOKEN)).status).toBe(201);
    const review = podReview('pod-2', [APP], { 'gate.dev/break-glass': r.id });
    await expectOverride(await admit(review), r.id);
    const deleted = await call('DELETE', `/v1/break-glass/${r.id}?reason=fixed`, undefined, TOKEN);
    expect(deleted).toMatchObject({ status: 200, body: { requestId: r.id, revoked: true } });
    const answer = await admit(review);
    expect(answer.allowed).toBe(false);
    expect(answer.status!.message).toContain('BREAK_GLASS_REVOKED');
  });

  it('the ledger verifies, its break-glass records in the chain with the decisions', async () => {
    const l = createSqliteLedger({ path: cfg.ledger, readOnly: true });
    try {
      const v = await l.verify();
      expect(v).toMatchObject({ ok: true });
      const events = (await l.breakGlassRecords!(100)).map((r) => [
        r.breakGlass.action,
        r.breakGlass.requestId,
      ]);
      expect(events).toContainEqual(['accepted', requestId]);
      expect(events).toContainEqual(['revoked', requestId]);
      let entries = 0;
      for await (const _ of l.entries()) entries++;
      expect(v.records).toBe(entries);
    } finally {
      await l.close();
    }
  });
});
