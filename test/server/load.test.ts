import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckRequest } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { HttpError } from '../../src/server/errors.js';
import { createLimiter } from '../../src/server/load.js';
import { decisionFor, fakeGate } from './fake-gate.js';

/**
 * Load shedding: at most maxConcurrent decisions at once and maxQueue waiting; past them the
 * answer is 503 SERVER_OVERLOADED with Retry-After at once (a denial that says so in admission),
 * and a request whose client has gone is never started. Over real sockets, with a gate that
 * decides only when the test lets it.
 */
const HEX = 'a'.repeat(64);
const tick = () => new Promise((r) => setTimeout(r, 10));

/** A gate whose decisions wait until the test releases them, in the order they started. */
function heldGate() {
  const held: Array<() => void> = [];
  const gate = fakeGate(
    (req: CheckRequest) =>
      new Promise((resolve) => held.push(() => resolve(decisionFor(req, 'allow')))),
  );
  return { gate, held };
}

describe('the limiter', () => {
  it('runs at most maxConcurrent, queues maxQueue in order, and sheds the rest at once', async () => {
    const limiter = createLimiter({ maxConcurrent: 2, maxQueue: 1 });
    const release: Array<() => void> = [];
    const started: number[] = [];
    const job = (n: number) => () =>
      new Promise<number>((resolve) => {
        started.push(n);
        release.push(() => resolve(n));
      });
    const runs = [1, 2, 3].map((n) => limiter.run(job(n)));
    const shed = await limiter.run(job(4)).catch((e: unknown) => e);
    expect(shed).toBeInstanceOf(HttpError);
    expect(shed).toMatchObject({
      status: 503,
      code: 'SERVER_OVERLOADED',
      headers: { 'retry-after': '1' },
    });
    expect(started).toEqual([1, 2]);
    expect(limiter.stats()).toMatchObject({ inFlight: 2, queued: 1, shed: 1 });
    release[0]!();
    await runs[0];
    await tick();
    expect(started).toEqual([1, 2, 3]);
    release[1]!();
    release[2]!();
    expect(await Promise.all(runs)).toEqual([1, 2, 3]);
    expect(limiter.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('never starts a request whose client went away while it waited', async () => {
    const limiter = createLimiter({ maxConcurrent: 1, maxQueue: 5 });
    let free: () => void = () => {};
    const first = limiter.run(() => new Promise<void>((r) => (free = r)));
    const left = new AbortController();
    let ran = false;
    const waiting = limiter.run(async () => {
      ran = true;
    }, left.signal);
    left.abort();
    await expect(waiting).rejects.toMatchObject({ status: 499, code: 'CLIENT_GONE' });
    free();
    await first;
    await tick();
    expect(ran).toBe(false);
    expect(limiter.stats()).toMatchObject({ abandoned: 1, queued: 0, inFlight: 0 });
  });

  it('sheds a request that waited longer than maxQueueWaitMs', async () => {
    const limiter = createLimiter({ maxConcurrent: 1, maxQueue: 5, maxQueueWaitMs: 30 });
    let free: () => void = () => {};
    const first = limiter.run(() => new Promise<void>((r) => (free = r)));
    const start = Date.now();
    await expect(limiter.run(async () => 1)).rejects.toMatchObject({
      code: 'SERVER_OVERLOADED',
      message: expect.stringMatching(/no turn within 30 ms/),
    });
    expect(Date.now() - start).toBeLessThan(1000);
    free();
    await first;
  });
});

describe('gate serve under more load than it takes', () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  async function serve(load: { maxConcurrent: number; maxQueue: number }) {
    const { gate, held } = heldGate();
    const app = createServer({ gate, load });
    await app.listen({ host: '127.0.0.1', port: 0 });
    closers.push(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    return { app, gate, held, port };
  }

  function post(port: number, path: string, body: unknown) {
    const payload = JSON.stringify(body);
    let req!: http.ClientRequest;
    const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }>(
      (resolve, reject) => {
        req = http.request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': payload.length },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }),
            );
          },
        );
        req.on('error', reject);
        req.end(payload);
      },
    );
    return { answer, req };
  }

  const decision = { subjects: [`sha256:${HEX}`], environment: 'production' };

  it('answers 503 SERVER_OVERLOADED with Retry-After at once past its limits, and the rest in turn', async () => {
    const { app, gate, held, port } = await serve({ maxConcurrent: 2, maxQueue: 2 });
    const calls = Array.from({ length: 5 }, () => post(port, '/v1/decisions', decision));
    const shed = await Promise.race(calls.map((c) => c.answer));
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect(shed.body.error.code).toBe('SERVER_OVERLOADED');
    expect(gate.calls.length).toBe(2);
    // each decision released lets a waiting one start
    while (gate.calls.length < 4) {
      held.splice(0).forEach((release) => release());
      await tick();
    }
    held.splice(0).forEach((release) => release());
    const answers = await Promise.all(calls.map((c) => c.answer));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 503]);
    expect(gate.calls.length).toBe(4);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^decisions_shed_total 1$/m);
  });

  it('denies an admission it has no room for, saying why', async () => {
    const { held, port } = await serve({ maxConcurrent: 1, maxQueue: 0 });
    const pod = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'uid-1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'shop',
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'p' },
          spec: { containers: [{ name: 'c', image: `registry.example/app@sha256:${HEX}` }] },
        },
      },
    };
    const first = post(port, '/v1/admission/production', pod);
    while (held.length < 1) await tick();
    const second = await post(port, '/v1/admission/production', pod).answer;
    expect(second.status).toBe(200);
    expect(second.body.response).toMatchObject({
      uid: 'uid-1',
      allowed: false,
      status: {
        code: 503,
        message: expect.stringMatching(/SERVER_OVERLOADED: the gate is overloaded/),
      },
    });
    held[0]!();
    expect((await first.answer).body.response.allowed).toBe(true);
  });

  it('never decides for a client that left while its request waited', async () => {
    const { app, gate, held, port } = await serve({ maxConcurrent: 1, maxQueue: 5 });
    const first = post(port, '/v1/decisions', decision);
    while (held.length < 1) await tick();
    const leaving = post(port, '/v1/decisions', decision);
    leaving.answer.catch(() => {});
    await tick();
    leaving.req.destroy();
    await tick();
    held[0]!();
    expect((await first.answer).status).toBe(200);
    await tick();
    expect(gate.calls.length).toBe(1);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^decisions_abandoned_total 1$/m);
  });
});
