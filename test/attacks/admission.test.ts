import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../../src/server/app.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { bytesOf, evidenceOf, gateOver, hex, statementAbout } from './gate-support.js';
import { reportAttack } from './report.js';

/**
 * Attack corpus: the HTTP front ends over a real gate. An admission review whose image is named
 * by tag (which the registry can move after the decision) is denied without asking the gate; a
 * caller cannot choose the rules, keys, identities, trusted root or the dry-run mode of its own
 * decision (the earlier attack pass's caller-chosen rules).
 */
const A = hex('admission attack image');

let svc: LocalSigstore;
let app: FastifyInstance;

beforeAll(async () => {
  svc = await startLocalSigstore();
  const m = await mintDSSEBundle(svc, {
    statement: statementAbout([A]),
    version: '0.3',
    signer: 'keyless',
  });
  const gate = await gateOver(svc, { evidence: [evidenceOf(bytesOf(m.bundle))] });
  app = createServer({ gate }); // the server owns the gate and closes it
});
afterAll(async () => {
  await app?.close();
  await svc?.close();
});

const review = (image: string) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'uid-attack',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: 'shop',
    object: {
      kind: 'Pod',
      metadata: { name: 'app' },
      spec: { containers: [{ name: 'app', image }] },
    },
  },
});

async function admit(image: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/admission/production',
    payload: review(image),
  });
  expect(res.statusCode).toBe(200);
  return res.json().response as { allowed: boolean; status?: { code: number; message: string } };
}

describe('admission', () => {
  it('admits the pinned image, so the refusals below are the attack', async () => {
    expect((await admit(`ghcr.io/acme/app@sha256:${A}`)).allowed).toBe(true);
  });

  for (const image of [
    'ghcr.io/acme/app:v1',
    'ghcr.io/acme/app',
    'ghcr.io/acme/app:latest',
    `ghcr.io/acme/app@sha256:${A.slice(0, 40)}`,
  ]) {
    it(`denies an image by tag or with a short digest: ${image}`, async () => {
      const r = await admit(image);
      reportAttack(
        `admission of an image by tag (${image})`,
        undefined,
        r.allowed ? 'allow' : 'deny',
        String(r.status?.code),
      );
      expect(r.allowed).toBe(false);
      expect(r.status?.code).toBe(403);
      expect(r.status?.message).toMatch(/not pinned by digest/);
    });
  }
});

describe('caller-chosen rules', () => {
  const body = { subjects: [`sha256:${hex('no evidence for this')}`], environment: 'production' };
  for (const [field, value] of [
    ['identities', [{ sanRegExp: '.*', issuer: 'https://token.actions.githubusercontent.com' }]],
    ['keys', [{ pem: '-----BEGIN PUBLIC KEY-----' }]],
    ['policy', { path: '/tmp/allow-all' }],
    ['trustedRoot', '/tmp/my-root.json'],
    ['rules', ['nothing']],
    ['config', { open: true }],
  ] as const) {
    it(`refuses a request that sets its own ${field}: 400, no decision`, async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        payload: { ...body, [field]: value },
      });
      const code = res.json().error?.code as string | undefined;
      reportAttack(`caller-chosen ${field}`, undefined, String(res.statusCode), code);
      expect(res.statusCode).toBe(400);
      expect(code).toBe('USAGE_ERROR');
    });
  }

  it('refuses a caller-chosen dry run (an enforced deny turned into a warning): 403 DRY_RUN_FORBIDDEN', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: { ...body, dryRun: true },
    });
    const code = res.json().error?.code as string | undefined;
    reportAttack('caller-chosen dry run', undefined, String(res.statusCode), code);
    expect(res.statusCode).toBe(403);
    expect(code).toBe('DRY_RUN_FORBIDDEN');
  });

  it('the same request without them is decided, and denied', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/decisions', payload: body });
    reportAttack('caller-chosen rules: baseline deny', undefined, res.json().outcome, undefined);
    expect(res.json().outcome).toBe('deny');
  });
});
