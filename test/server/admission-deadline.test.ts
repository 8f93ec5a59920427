import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer } from '../../src/server/app.js';
import { startRealGate, type RealGate } from './real-gate.js';

/**
 * Issue 8, items 5 and 7 together, on a real gate: a source that never answers must not hold an
 * admission review past the webhook's timeout (the API server would then follow its failure
 * policy); the review is denied, as could-not-decide, before it, and the decision is recorded.
 */
let real: RealGate;
beforeAll(async () => {
  real = await startRealGate();
});
afterAll(() => real.close());

it('denies before the webhook timeout when a source hangs, and records the decision', async () => {
  const app = createServer({ gate: real.gate });
  const review = (hex: string) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-hang',
      kind: { kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'shop',
      object: { spec: { containers: [{ name: 'app', image: `app@sha256:${hex}` }] } },
    },
  });
  // The server's first decision also loads what every later one reuses; the timing is of a warm one.
  const warm = await app.inject({
    method: 'POST',
    url: '/v1/admission/dev',
    payload: review(real.allowed),
  });
  expect(warm.json().response.allowed).toBe(true);
  const started = Date.now();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/admission/dev?timeout=2s',
    payload: review(real.hanging),
  });
  const took = Date.now() - started;
  await app.close();
  expect(res.statusCode).toBe(200);
  const response = res.json().response;
  expect(response).toMatchObject({
    uid: 'uid-hang',
    allowed: false,
    status: { code: 503, message: expect.stringMatching(/could not decide.*SOURCE_TIMEOUT/) },
  });
  expect(took).toBeLessThan(2000);
  // 2 s less 500 ms kept back for giving up, recording and answering
  expect(took).toBeGreaterThanOrEqual(1500 - 50);
  expect(await real.recorded(response.auditAnnotations.decision)).toBe(true);
});
