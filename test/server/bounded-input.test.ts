import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../src/server/json-limits.js';
import { DIGEST, fakeGate } from './fake-gate.js';
import { startRealGate, type RealGate } from './real-gate.js';

/**
 * Issue 8, items 4 and 6 over HTTP: input is bounded before the gate decides, and a caller cannot
 * turn enforcement off for itself with dryRun.
 */
const nested = (levels: number, inner = '{}') =>
  `${'{"a":'.repeat(levels - 1)}${inner}${'}'.repeat(levels - 1)}`;
const body = (context: string, extra = '') =>
  `{"subjects":["${DIGEST}"],"environment":"dev","context":${context}${extra}}`;

async function post(payload: string, opts: Partial<ServerOptions> = {}) {
  const gate = fakeGate();
  const app = createServer({ gate, ...opts });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/decisions',
    headers: { 'content-type': 'application/json' },
    payload,
  });
  await app.close();
  return { res, body: res.json(), gate };
}

describe('a deeply nested context, on a real gate', () => {
  let real: RealGate;
  beforeAll(async () => {
    real = await startRealGate();
  });
  afterAll(() => real.close());

  it.each([3000, 5000])(
    'refuses %d levels with a coded 400 before deciding, as it answered 503 or a bare 500',
    async (levels) => {
      const app = createServer({ gate: real.gate });
      const res = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        headers: { 'content-type': 'application/json' },
        payload: body(nested(levels)),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: {
          code: 'INPUT_TOO_DEEP',
          message: `request body nests more than ${MAX_JSON_DEPTH} levels`,
        },
      });
      const d = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        payload: { subjects: [`sha256:${real.allowed}`], environment: 'dev' },
      });
      expect(d.json()).toMatchObject({ outcome: 'allow' });
      expect(await real.recorded(d.json().id)).toBe(true);
    },
  );
});

describe('json depth', () => {
  it('accepts a context nested up to the limit (the body is level 1) and refuses one more', async () => {
    const ok = await post(body(nested(MAX_JSON_DEPTH - 1)));
    expect(ok.res.statusCode).toBe(200);
    expect(ok.gate.calls).toHaveLength(1);
    const deep = await post(body(nested(MAX_JSON_DEPTH)));
    expect([deep.res.statusCode, deep.body.error.code]).toEqual([400, 'INPUT_TOO_DEEP']);
    expect(deep.gate.calls).toHaveLength(0);
  });

  it('does not count brackets inside strings, escaped quotes included', async () => {
    const text = JSON.stringify({ s: `"${'['.repeat(500)}\\"{{{{` });
    const { res, gate } = await post(body(text));
    expect(res.statusCode).toBe(200);
    expect(gate.calls[0]!.context).toEqual(JSON.parse(text));
  });

  it('agrees with a recursive count on any json value', () => {
    const depth = (v: unknown): number =>
      typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depth)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (v, max) => {
        const text = JSON.stringify(v);
        expect(jsonDepthExceeds(text, max)).toBe(depth(v) > max);
      }),
      { numRuns: 500 },
    );
  });

  it('counts a million levels without recursion', () => {
    const text = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(jsonDepthExceeds(text, 64)).toBe(true);
    expect(jsonDepthExceeds(text, 1_000_000)).toBe(false);
  });
});

describe('sizes', () => {
  it('refuses a context over 64 KiB with 413 INPUT_TOO_LARGE, never calling the gate', async () => {
    const context = JSON.stringify({ pad: 'x'.repeat(64 * 1024) });
    const { res, body: b, gate } = await post(body(context));
    expect(res.statusCode).toBe(413);
    expect(b.error).toEqual({
      code: 'INPUT_TOO_LARGE',
      message: `context is ${context.length} bytes of json, over the limit of 65536`,
    });
    expect(gate.calls).toHaveLength(0);
  });

  it('refuses more than 64 subjects with 400', async () => {
    const subjects = Array.from({ length: 65 }, () => DIGEST);
    const payload = JSON.stringify({ subjects, environment: 'dev' });
    const { res, body: b, gate } = await post(payload);
    expect(res.statusCode).toBe(400);
    expect(b.error).toMatchObject({ code: 'USAGE_ERROR', message: expect.stringMatching(/64/) });
    expect(gate.calls).toHaveLength(0);
  });
});

describe('dryRun over http', () => {
  it('refuses dryRun: true with 403 DRY_RUN_FORBIDDEN unless the configuration allows it', async () => {
    const refused = await post(body('{}', ',"dryRun":true'));
    expect(refused.res.statusCode).toBe(403);
    expect(refused.body.error).toEqual({
      code: 'DRY_RUN_FORBIDDEN',
      message:
        'dryRun is not allowed over http: the configuration must set server.allowDryRun: true',
    });
    expect(refused.gate.calls).toHaveLength(0);
    const enforced = await post(body('{}', ',"dryRun":false'));
    expect(enforced.gate.calls[0]!.dryRun).toBe(false);
    const allowed = await post(body('{}', ',"dryRun":true'), { allowDryRun: true });
    expect(allowed.gate.calls[0]!.dryRun).toBe(true);
  });
});
