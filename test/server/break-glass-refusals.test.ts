import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { Gate } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { keyIdOf } from '../../src/verify/key-id.js';
import {
  APPROVER,
  ONCALL,
  STRANGER,
  approvedRequest,
  gateFor,
  hex,
  podReview,
  signed,
  statementOf,
  tmp,
} from '../breakglass/support.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * POST /v1/break-glass over real HTTP on 127.0.0.1, a real gate and SQLite ledger: every way a
 * request is refused is answered with its code and the status of the one table (errors.ts), and
 * is recorded in the ledger with why. The refusals that only a use can find (another subject,
 * another environment, an unknown or revoked request, a single-use request used again) are
 * answered in admission, said in its message, and recorded with the deny.
 */
const APP = hex('break-glass refusals app');
const OTHER = hex('break-glass refusals other');
const TOKEN = 'bg-token';

let svc: LocalSigstore;
const servers: Array<{ app: FastifyInstance; gate: Gate; ledger: string; base: string }> = [];

beforeAll(async () => {
  svc = await startLocalSigstore();
});
afterAll(async () => {
  for (const s of servers) await s.app.close();
  await svc?.close();
});

async function serve(doc: Record<string, unknown> = {}, rules?: object) {
  const { gate, ledger } = await gateFor(svc, doc, rules);
  const app = createServer({ gate, tokens: { breakGlass: [TOKEN] } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  const s = { app, gate, ledger, base: `http://127.0.0.1:${address.port}` };
  servers.push(s);
  return s;
}

let main: Awaited<ReturnType<typeof serve>>;
beforeAll(async () => {
  main = await serve();
});

async function call(
  method: 'POST' | 'DELETE' | 'GET',
  url: string,
  body?: unknown,
  token: string | null = TOKEN,
  base = main.base,
) {
  const res = await request(`${base}${url}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

const post = (bundles: unknown[], base?: string) =>
  call('POST', '/v1/break-glass', { bundles }, TOKEN, base);

/** The break-glass records of the ledger, read through a connection of its own. */
async function breakGlassRecords(file = main.ledger) {
  const l = createSqliteLedger({ path: file });
  try {
    return await l.breakGlassRecords!(1000);
  } finally {
    await l.close();
  }
}

/** The refusal is answered with its code and status, and its record says the same. */
async function expectRefused(
  res: { status: number; body: Record<string, any> },
  code: string,
  status: number,
  file?: string,
) {
  expect([res.status, res.body.error?.code]).toEqual([status, code]);
  const records = await breakGlassRecords(file);
  const record = records.find((r) => r.id === res.body.record);
  expect(record?.breakGlass).toMatchObject({
    action: 'refused',
    refusal: { code, message: res.body.error.message },
  });
}

describe('POST /v1/break-glass is guarded by the break-glass token', () => {
  it('refuses no token (401), a wrong one (403), and every token when none is configured', async () => {
    const { bundles } = await approvedRequest(svc, [APP]);
    expect((await call('POST', '/v1/break-glass', { bundles }, null)).status).toBe(401);
    expect((await call('POST', '/v1/break-glass', { bundles }, 'audit-token')).status).toBe(403);
    const { gate } = await gateFor(svc);
    const open = createServer({ gate, tokens: { audit: ['audit-token'] } });
    try {
      const res = await open.inject({
        method: 'POST',
        url: '/v1/break-glass',
        headers: { authorization: 'Bearer audit-token' },
        payload: { bundles },
      });
      expect(res.statusCode).toBe(403);
    } finally {
      await open.close();
    }
    // nothing was stored, nor recorded, by the refused calls
    expect(await breakGlassRecords()).toEqual([]);
  });

  it('takes a strict body: an unknown field, no bundles, a bundle that is not an object', async () => {
    for (const body of [
      { bundles: [{}], extra: 1 },
      { bundles: [] },
      { bundles: ['x'] },
      { bundles: new Array(17).fill({}) },
    ]) {
      const res = await call('POST', '/v1/break-glass', body);
      expect([res.status, res.body.error.code]).toEqual([400, 'USAGE_ERROR']);
    }
  });
});

describe('a request refused when posted: its code, its status, its record', () => {
  it('accepts a signed, approved request: 201 with its id, recorded with its bundles', async () => {
    const { id, bundles } = await approvedRequest(svc, [APP]);
    const res = await post(bundles);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      requestId: id,
      environment: 'production',
      subjects: [`sha256:${APP}`],
    });
    const record = (await breakGlassRecords()).find((r) => r.id === res.body.record);
    expect(record).toMatchObject({
      outcome: 'break-glass',
      environment: 'production',
      subjects: [`sha256:${APP}`],
      breakGlass: {
        action: 'accepted',
        requestId: id,
        request: { signers: [ONCALL.san, APPROVER.san] },
      },
    });
    expect(record!.breakGlass.bundles).toHaveLength(2);
    // posted again: already stored
    await expectRefused(await post(bundles), 'BREAK_GLASS_EXISTS', 409);
  });

  it('BREAK_GLASS_INVALID: a bundle that is not one, and a tampered signature', async () => {
    await expectRefused(await post([{ mediaType: 'nothing' }]), 'BREAK_GLASS_INVALID', 422);
    const { bundles } = await approvedRequest(svc, [APP]);
    const forged = structuredClone(bundles[0]) as {
      dsseEnvelope: { signatures: Array<{ sig: string }> };
    };
    const sig = Buffer.from(forged.dsseEnvelope.signatures[0]!.sig, 'base64');
    sig.writeUInt8(sig.readUInt8(10) ^ 1, 10);
    forged.dsseEnvelope.signatures[0]!.sig = sig.toString('base64');
    await expectRefused(await post([forged, bundles[1]]), 'BREAK_GLASS_INVALID', 422);
  });

  it('BREAK_GLASS_INVALID: a co-signature over another request', async () => {
    const a = await approvedRequest(svc, [APP]);
    const b = await approvedRequest(svc, [APP]);
    await expectRefused(await post([a.bundles[0], b.bundles[1]]), 'BREAK_GLASS_INVALID', 422);
  });

  it('BREAK_GLASS_NOT_CONFIGURED: an environment without break-glass rules', async () => {
    const statement = statementOf([APP], { environment: 'qa' });
    await expectRefused(
      await post([await signed(svc, ONCALL, statement)]),
      'BREAK_GLASS_NOT_CONFIGURED',
      422,
    );
  });

  it('BREAK_GLASS_UNAUTHORIZED: a requester the policy data does not name', async () => {
    const statement = statementOf([APP], { environment: 'dev', requester: STRANGER.san });
    await expectRefused(
      await post([await signed(svc, STRANGER, statement)]),
      'BREAK_GLASS_UNAUTHORIZED',
      403,
    );
  });

  it('BREAK_GLASS_APPROVALS_MISSING: production without its approver', async () => {
    const statement = statementOf([APP]);
    await expectRefused(
      await post([await signed(svc, ONCALL, statement)]),
      'BREAK_GLASS_APPROVALS_MISSING',
      403,
    );
  });

  it('BREAK_GLASS_EXPIRED and BREAK_GLASS_EXPIRY_TOO_LONG', async () => {
    const old = statementOf([APP], {
      environment: 'dev',
      now: new Date(Date.now() - 2 * 3600_000),
    });
    await expectRefused(await post([await signed(svc, ONCALL, old)]), 'BREAK_GLASS_EXPIRED', 422);
    const long = statementOf([APP], { environment: 'dev', expiresInMinutes: 600 });
    await expectRefused(
      await post([await signed(svc, ONCALL, long)]),
      'BREAK_GLASS_EXPIRY_TOO_LONG',
      422,
    );
  });

  it('BREAK_GLASS_UNTIMED: signed by a key allowed to sign without a log', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dir = tmp('untimed');
    const pub = path.join(dir, 'oncall.pub');
    writeFileSync(pub, createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }));
    const id = keyIdOf(createPublicKey(key.privateKey));
    const s = await serve(
      { keys: [{ path: pub, transparency: 'optional' }] },
      { dev: { requesters: [{ key_id: id }], max_expiry_minutes: 120 } },
    );
    const m = await mintDSSEBundle(svc, {
      statement: statementOf([APP], { environment: 'dev', requester: id }),
      version: '0.3',
      signer: 'key',
      privateKey: key.privateKey,
      tlog: false,
    });
    await expectRefused(await post([m.bundle], s.base), 'BREAK_GLASS_UNTIMED', 422, s.ledger);
  });
});

interface Answer {
  allowed: boolean;
  status?: { code: number; message: string };
  auditAnnotations: { decision: string };
}

describe('refusals a use finds: said in the admission answer, recorded with the deny', () => {
  const admit = async (env: string, images: string[], id: string) => {
    const res = await request(`${main.base}/v1/admission/${env}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        podReview(`uid-${id.slice(-6)}`, images, { 'gate.dev/break-glass': id }),
      ),
    });
    const body = (await res.body.json()) as {
      response: {
        allowed: boolean;
        status?: { message: string };
        auditAnnotations: { decision: string };
      };
    };
    return body.response;
  };

  async function expectDenied(env: string, images: string[], id: string, code: string) {
    const r = await admit(env, images, id);
    expect(r.allowed).toBe(false);
    expect(r.status!.message).toContain(`break-glass request ${id} refused: ${code}`);
    const l = createSqliteLedger({ path: main.ledger });
    try {
      const d = (await l.get(r.auditAnnotations.decision))!.decision;
      expect(d.outcome).toBe('deny');
      expect(d.breakGlassRefused?.map((x) => x.code)).toContain(code);
    } finally {
      await l.close();
    }
  }

  it('another image (BREAK_GLASS_WRONG_SUBJECT), another environment (BREAK_GLASS_WRONG_ENVIRONMENT)', async () => {
    const { id, bundles } = await approvedRequest(svc, [APP]);
    expect((await post(bundles)).status).toBe(201);
    // the annotation names the request for another image, or for the app with another beside it
    await expectDenied('production', [OTHER], id, 'BREAK_GLASS_WRONG_SUBJECT');
    await expectDenied('production', [APP, OTHER], id, 'BREAK_GLASS_WRONG_SUBJECT');
    expect((await call('GET', `/v1/break-glass/${id}`)).body).toMatchObject({
      stored: true,
      active: true,
    });
    await expectDenied('dev', [APP], id, 'BREAK_GLASS_WRONG_ENVIRONMENT');
    // and it still admits what it was for
    expect((await admit('production', [APP], id)).allowed).toBe(true);
  });

  it('a forged or guessed id (BREAK_GLASS_UNKNOWN), a revoked one (BREAK_GLASS_REVOKED)', async () => {
    await expectDenied('production', [APP], 'req-never-posted-0001', 'BREAK_GLASS_UNKNOWN');
    const { id, bundles } = await approvedRequest(svc, [APP]);
    expect((await post(bundles)).status).toBe(201);
    expect((await call('DELETE', `/v1/break-glass/${id}`)).status).toBe(200);
    await expectDenied('production', [APP], id, 'BREAK_GLASS_REVOKED');
    // what the ledger holds of it, behind the same token
    const held = await call('GET', `/v1/break-glass/${id}`);
    expect(held).toMatchObject({
      status: 200,
      body: {
        requestId: id,
        stored: true,
        environment: 'production',
        subjects: [`sha256:${APP}`],
        requester: ONCALL.san,
        reuse: 'until_expiry',
        revoked: { via: 'server' },
        active: false,
      },
    });
    expect((await call('GET', `/v1/break-glass/${id}`, undefined, null)).status).toBe(401);
    const none = await call('GET', '/v1/break-glass/req-never-posted-0003');
    expect([none.status, none.body.error.code]).toEqual([404, 'BREAK_GLASS_UNKNOWN']);
    const again = await call('DELETE', `/v1/break-glass/${id}`);
    expect([again.status, again.body.error.code]).toEqual([409, 'BREAK_GLASS_REVOKED']);
    // a request never posted (used as bundles only) is revoked all the same, and says so
    const unposted = await call('DELETE', '/v1/break-glass/req-never-posted-0002');
    expect(unposted).toMatchObject({ status: 200, body: { revoked: true, stored: false } });
    expect((await call('DELETE', `/v1/break-glass/${id}`, undefined, null)).status).toBe(401);
  });

  it('an annotation that is not a request id, or two different ids in one object, is denied', async () => {
    const review = (object: object) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'uid-ann', kind: { kind: 'Deployment' }, operation: 'CREATE', object },
    });
    const spec = { containers: [{ name: 'c', image: `ghcr.io/acme/app@sha256:${APP}` }] };
    const send = async (object: object) => {
      const res = await request(`${main.base}/v1/admission/production`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(review(object)),
      });
      return ((await res.body.json()) as { response: Answer }).response;
    };
    const bad = await send({
      metadata: { annotations: { 'gate.dev/break-glass': 'x y' } },
      spec: { template: { spec } },
    });
    expect(bad).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(bad.status!.message).toContain('gate.dev/break-glass must be a break-glass request id');
    const two = await send({
      metadata: { annotations: { 'gate.dev/break-glass': 'req-one-00000001' } },
      spec: {
        template: {
          metadata: { annotations: { 'gate.dev/break-glass': 'req-two-00000002' } },
          spec,
        },
      },
    });
    expect(two).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(two.status!.message).toContain('more than one break-glass request');
  });

  it('single use (BREAK_GLASS_REPLAYED): staging admits one Pod, refuses the next', async () => {
    const statement = statementOf([APP], { environment: 'staging' });
    const id = statement.predicate.requestId;
    expect((await post([await signed(svc, ONCALL, statement)])).status).toBe(201);
    expect((await admit('staging', [APP], id)).allowed).toBe(true);
    await expectDenied('staging', [APP], id, 'BREAK_GLASS_REPLAYED');
  });
});
