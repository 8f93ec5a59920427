import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRequest } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { decisionFor, fakeGate } from '../server/fake-gate.js';
import { checkProperty, runs, timeoutFor } from './budget.js';
import { jsonPaths, replaceAt } from './cases.js';
import { mutation } from './mutate.js';

/**
 * HTTP bodies for POST /v1/decisions and AdmissionReviews for POST /v1/admission, through the
 * real server (fastify's inject) over a gate that allows one digest only: every body gets a
 * well-formed answer or a 4xx/5xx JSON error with a code, never a 500 (an uncaught exception)
 * and never a stack; nothing is allowed that the gate did not allow, except what the webhook
 * admits without deploying anything (a DELETE, a status update).
 */
const ALLOWED = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
let allows = 0;
const gate = fakeGate((req: CheckRequest) => {
  const ok = req.subjects.every((s) => s.digest.algorithm === 'sha256' && s.digest.hex === ALLOWED);
  if (ok) allows++;
  return decisionFor(req, ok ? 'allow' : 'deny');
});
let app: FastifyInstance;
beforeAll(async () => {
  app = createServer({ gate, admission: { exemptKinds: ['ConfigMap'] } });
  await app.ready();
});
afterAll(async () => app?.close());

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'application/json; charset=latin1',
];

interface Sent {
  url: string;
  payload: string | Buffer;
  contentType: string;
}

/** Sends; checks the answer is JSON, coded when an error, never a 500 or a stack. */
async function send(s: Sent): Promise<{ status: number; body: any; allowsBefore: number }> {
  const allowsBefore = allows;
  const res = await app.inject({
    method: 'POST',
    url: s.url,
    payload: s.payload,
    headers: { 'content-type': s.contentType },
  });
  expect(res.body).not.toMatch(/\n\s+at /);
  expect(res.statusCode, res.body).not.toBe(500);
  const body = res.json();
  if (res.statusCode >= 400 && !body.response) {
    expect(typeof body.error?.code, res.body).toBe('string');
    expect(body.error.code).toMatch(/^[A-Z0-9_]+$/);
    expect(body.error.message).not.toMatch(/\n/);
  }
  return { status: res.statusCode, body, allowsBefore };
}

const DECISION = {
  subjects: [`sha256:${ALLOWED}`, { digest: `sha256:${ALLOWED}`, name: 'app', version: '1.0' }],
  environment: 'dev',
  context: { pipeline: 'ci' },
  dryRun: false,
  summary: false,
};

/** A body as text: a mutated valid one, any JSON value, or any text. */
function bodies(seed: object): fc.Arbitrary<string | Buffer> {
  return fc.oneof(
    fc
      .tuple(fc.constantFrom(...jsonPaths(seed)), mutation)
      .map(([p, m]) => JSON.stringify(replaceAt(seed, p, m))),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string(),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.nat(40).map((d) => `${'['.repeat(d * 50)}${']'.repeat(d * 50)}`),
    fc.constantFrom('{"__proto__": {"allow": true}}', '{"constructor": {"prototype": {}}}', ''),
  );
}

const N = runs();

describe('POST /v1/decisions', () => {
  it('the seed body is allowed, and another digest is not', async () => {
    const ok = await send({
      url: '/v1/decisions',
      payload: JSON.stringify(DECISION),
      contentType: 'application/json',
    });
    expect(ok).toMatchObject({ status: 200, body: { outcome: 'allow', allow: true } });
    const other = { ...DECISION, subjects: [`sha256:${OTHER}`] };
    const no = await send({
      url: '/v1/decisions',
      payload: JSON.stringify(other),
      contentType: 'application/json',
    });
    expect(no).toMatchObject({ status: 200, body: { outcome: 'deny', allow: false } });
  });

  it(
    'any body: a decision or a coded error, and an allow only where the gate allowed',
    async () => {
      await checkProperty(
        'http.decisions-body',
        fc.asyncProperty(
          bodies(DECISION),
          fc.constantFrom(...CONTENT_TYPES),
          async (payload, contentType) => {
            const r = await send({ url: '/v1/decisions', payload, contentType });
            if (r.status === 200) {
              expect(['allow', 'deny', 'override', 'error']).toContain(r.body.outcome);
              expect(typeof r.body.allow).toBe('boolean');
            }
            if (r.body.allow === true) expect(allows).toBe(r.allowsBefore + 1);
          },
        ),
        { numRuns: N * 3, timeout: 5_000 },
      );
    },
    timeoutFor(N * 3, 10),
  );
});

const pinned = (hex: string) => `registry.example/shop/web@sha256:${hex}`;
const REVIEW = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'uid-123',
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    operation: 'CREATE',
    namespace: 'shop',
    name: 'web',
    object: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        template: {
          spec: {
            initContainers: [{ name: 'init', image: pinned(ALLOWED) }],
            containers: [
              { name: 'web', image: pinned(ALLOWED) },
              { name: 'side', image: `registry.example/shop/side:1.0@sha256:${ALLOWED}` },
            ],
          },
        },
      },
    },
  },
};

/**
 * The webhook admits without asking the gate only what deploys nothing: a DELETE or CONNECT, a
 * subresource other than ephemeral containers, an exempt kind (ConfigMap here) with no image.
 */
function deploysNothing(review: any): boolean {
  const r = review?.request;
  if (r?.kind?.kind === 'ConfigMap') return true;
  if (r?.operation === 'DELETE' || r?.operation === 'CONNECT') return true;
  const sub = r?.subResource;
  return sub !== undefined && sub !== '' && sub !== 'ephemeralcontainers';
}

describe('POST /v1/admission', () => {
  it('the seed review is allowed, and one with another digest is not', async () => {
    const ok = await send({
      url: '/v1/admission/dev',
      payload: JSON.stringify(REVIEW),
      contentType: 'application/json',
    });
    expect(ok.body.response).toMatchObject({ uid: 'uid-123', allowed: true });
    const other = replaceAt(
      REVIEW,
      ['request', 'object', 'spec', 'template', 'spec', 'containers', 0, 'image'],
      () => pinned(OTHER),
    );
    const no = await send({
      url: '/v1/admission/dev',
      payload: JSON.stringify(other),
      contentType: 'application/json',
    });
    expect(no.body.response).toMatchObject({ uid: 'uid-123', allowed: false });
  });

  it(
    'any review: an AdmissionReview answer or a coded error, never allowed where the gate was not',
    async () => {
      const urls = [
        '/v1/admission/dev',
        '/v1/admission?env=dev',
        '/v1/admission',
        '/v1/admission/dev?env=prod',
      ];
      await checkProperty(
        'http.admission-review',
        fc.asyncProperty(
          bodies(REVIEW),
          fc.constantFrom(...urls),
          fc.constantFrom(...CONTENT_TYPES.slice(0, 3)),
          async (payload, url, contentType) => {
            const r = await send({ url, payload, contentType });
            if (r.status !== 200) return;
            expect(r.body.kind).toBe('AdmissionReview');
            expect(typeof r.body.response?.uid).toBe('string');
            expect(typeof r.body.response?.allowed).toBe('boolean');
            if (r.body.response.allowed !== true) return;
            let sentReview: unknown;
            try {
              sentReview = JSON.parse(payload.toString());
            } catch {
              sentReview = undefined;
            }
            // allowed: the gate allowed it just now, or it deploys nothing
            expect(
              allows === r.allowsBefore + 1 || deploysNothing(sentReview),
              payload.toString(),
            ).toBe(true);
          },
        ),
        { numRuns: N * 3, timeout: 5_000 },
      );
    },
    timeoutFor(N * 3, 10),
  );
});
