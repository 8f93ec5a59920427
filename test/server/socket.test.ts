import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gate } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { closeGracefully } from '../../src/server/shutdown.js';
import { startRealGate, type RealGate } from './real-gate.js';

/**
 * The one test over a real socket, on a real gate (real-gate.ts): HTTP through undici, then a
 * graceful close while a decision is in flight. The gate is wrapped only to hold that one
 * decision until the server has started closing.
 */
let real: RealGate;
beforeAll(async () => {
  real = await startRealGate();
});
afterAll(() => real.close());

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

it('serves over http and, on close, finishes the decision in flight before closing the gate', async () => {
  const started = deferred();
  const release = deferred();
  let closed = 0;
  const gate: Gate = {
    ...real.gate,
    async check(req) {
      if (req.context?.slow) {
        started.resolve();
        await release.promise;
      }
      return real.gate.check(req);
    },
    close: async () => void closed++,
  };
  const server = createServer({ gate });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const agent = new Agent();
  const post = (context: object) =>
    request(`${base}/v1/decisions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subjects: [`sha256:${real.allowed}`], environment: 'dev', context }),
    });

  const health = await request(`${base}/healthz`, { dispatcher: agent });
  expect([health.statusCode, await health.body.json()]).toEqual([200, { status: 'ok' }]);
  const first = await post({});
  expect(first.statusCode).toBe(200);
  expect(await first.body.json()).toMatchObject({ outcome: 'allow', allow: true });

  const slow = post({ slow: true });
  await started.promise;
  const closing = closeGracefully(server, 5_000);
  // No new connections once closing has begun (a fresh agent, so no pooled socket is reused).
  const fresh = new Agent();
  await expect(request(`${base}/healthz`, { dispatcher: fresh })).rejects.toThrow();
  expect(closed).toBe(0);

  release.resolve();
  const answer = await slow;
  expect(answer.statusCode).toBe(200);
  const decision = (await answer.body.json()) as { id: string; allow: boolean };
  expect(decision.allow).toBe(true);
  expect(await closing).toEqual({ forced: false });
  expect(closed).toBe(1);
  // Acknowledged means recorded.
  expect(await real.recorded(decision.id)).toBe(true);
  await Promise.all([agent.close(), fresh.close()]);
});

it('answers Kubernetes AdmissionReviews over a real socket', async () => {
  const server = createServer({ gate: real.gate, admissionEnvironment: 'dev' });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const review = (uid: string, image: string) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app' },
        spec: { containers: [{ name: 'app', image }] },
      },
    },
  });
  const send = async (body: object) => {
    const res = await request(`${base}/v1/admission?env=dev`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: res.statusCode,
      body: (await res.body.json()) as {
        response: { uid: string; allowed: boolean; status?: { message: string } };
      },
    };
  };
  try {
    const pinned = await send(review('uid-1', `registry.example/acme/app@sha256:${real.allowed}`));
    expect(pinned.status).toBe(200);
    expect(pinned.body.response).toMatchObject({ uid: 'uid-1', allowed: true });
    const tagged = await send(review('uid-2', 'registry.example/acme/app:latest'));
    expect(tagged.body.response).toMatchObject({ uid: 'uid-2', allowed: false });
    expect(tagged.body.response.status!.message).toMatch(/app.*latest|digest/);
  } finally {
    await server.close();
  }
});
