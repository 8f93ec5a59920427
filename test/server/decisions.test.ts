import { describe, expect, it } from 'vitest';
import { GateError } from '../../src/errors.js';
import { createServer } from '../../src/server/app.js';
import { DIGEST, decisionFor, fakeGate, OTHER, type Answer } from './fake-gate.js';

/**
 * POST /v1/decisions and the error mapping, with a fake gate: these test the HTTP adapter
 * (status codes, validation, error bodies). real-gate.test.ts runs the same route on a real gate.
 */
const post = async (
  answer?: Answer,
  payload: unknown = { subjects: [DIGEST], environment: 'dev' },
  opts = {},
) => {
  const gate = fakeGate(answer);
  const app = createServer({ gate, ...opts });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/decisions',
    payload: payload as object,
  });
  await app.close();
  return { res, body: res.json(), gate };
};

const expectNoStack = (text: string) => expect(text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/);

describe('POST /v1/decisions', () => {
  it('answers an allow with 200 and the decision', async () => {
    const { res, body, gate } = await post();
    expect(res.statusCode).toBe(200);
    expect(body).toMatchObject({ outcome: 'allow', allow: true, environment: 'dev' });
    expect(gate.calls[0]).toEqual({
      subjects: [{ digest: { algorithm: 'sha256', hex: 'a'.repeat(64) } }],
      environment: 'dev',
      context: {},
      dryRun: false,
    });
  });

  it('answers a deny with 200 and allow: false: a deny is a result, not an error', async () => {
    const { res, body } = await post((req) => decisionFor(req, 'deny'));
    expect(res.statusCode).toBe(200);
    expect(body).toMatchObject({
      outcome: 'deny',
      allow: false,
      violations: [{ id: 'tests.passed' }],
    });
  });

  it('answers could-not-decide with 503 and the recorded decision, whose error is coded', async () => {
    const { res, body } = await post((req) => decisionFor(req, 'error'));
    expect(res.statusCode).toBe(503);
    expect(body).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'SOURCE_UNREACHABLE' },
    });
  });

  it('answers 400 when the decision failed on the request itself (policy input invalid)', async () => {
    const error = {
      code: 'POLICY_INPUT_INVALID' as const,
      message: 'context/changeKinds must be array',
    };
    const { res } = await post((req) => decisionFor(req, 'error', { error }));
    expect(res.statusCode).toBe(400);
  });

  it('passes a release set with names, versions, context and dryRun (when allowed)', async () => {
    const payload = {
      subjects: [
        { digest: DIGEST, name: 'api', version: '2.1.0' },
        OTHER.toUpperCase().replace('SHA256', 'sha256'),
      ],
      environment: 'staging',
      context: { changeKinds: ['metadata'] },
      dryRun: true,
    };
    const { res, gate } = await post(undefined, payload, { allowDryRun: true });
    expect(res.statusCode).toBe(200);
    expect(gate.calls[0]).toMatchObject({
      subjects: [
        { name: 'api', version: '2.1.0', digest: { hex: 'a'.repeat(64) } },
        { digest: { hex: 'b'.repeat(64) } },
      ],
      context: { changeKinds: ['metadata'] },
      dryRun: true,
    });
  });
});

describe('error mapping', () => {
  it.each([
    ['a malformed digest', { subjects: ['sha256:abc'], environment: 'dev' }, /invalid digest/],
    ['no subjects', { subjects: [], environment: 'dev' }, /subjects/],
    ['no environment', { subjects: [DIGEST] }, /environment/],
    [
      'server-side bundle paths',
      { subjects: [DIGEST], environment: 'dev', bundles: ['/etc'] },
      /additional properties/,
    ],
    [
      'a string for a boolean',
      { subjects: [DIGEST], environment: 'dev', dryRun: 'true' },
      /dryRun/,
    ],
    ['a bare string for the list', { subjects: DIGEST, environment: 'dev' }, /subjects/],
  ])('refuses %s with 400 USAGE_ERROR, never calling the gate', async (_what, payload, message) => {
    const { res, body, gate } = await post(undefined, payload);
    expect(res.statusCode).toBe(400);
    expect(body.error.code).toBe('USAGE_ERROR');
    expect(body.error.message).toMatch(message);
    expect(gate.calls).toHaveLength(0);
  });

  it('refuses malformed json with 400 INPUT_MALFORMED_JSON', async () => {
    const app = createServer({ gate: fakeGate() });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { 'content-type': 'application/json' },
      payload: '{"subjects": [',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'INPUT_MALFORMED_JSON',
      message: expect.stringMatching(/not valid json/),
    });
    await app.close();
  });

  it('refuses a body over the limit with 413 INPUT_TOO_LARGE', async () => {
    const payload = { subjects: [DIGEST], environment: 'dev', context: { pad: 'x'.repeat(2048) } };
    const { res, body, gate } = await post(undefined, payload, { bodyLimit: 1024 });
    expect(res.statusCode).toBe(413);
    expect(body).toEqual({
      error: { code: 'INPUT_TOO_LARGE', message: 'request body is over the size limit' },
    });
    expect(gate.calls).toHaveLength(0);
  });

  it('refuses a body that is not json with 415', async () => {
    const app = createServer({ gate: fakeGate() });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { 'content-type': 'text/plain' },
      payload: 'x',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    await app.close();
  });

  it('maps a thrown LEDGER_UNAVAILABLE to 503 with a coded body and no stack trace', async () => {
    const { res, body } = await post(() => {
      throw new GateError('LEDGER_UNAVAILABLE', 'cannot record the decision: disk full');
    });
    expect(res.statusCode).toBe(503);
    expect(body).toEqual({
      error: { code: 'LEDGER_UNAVAILABLE', message: 'cannot record the decision: disk full' },
    });
    expectNoStack(res.body);
  });

  it('maps an unexpected error to 500 INTERNAL_ERROR without its message', async () => {
    const { res, body } = await post(() => {
      throw new Error('secret internals at /srv/gate/src/x.ts:12');
    });
    expect(res.statusCode).toBe(500);
    expect(body).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'internal error' } });
    expectNoStack(res.body);
  });

  it('answers an unknown route with a coded 404', async () => {
    const app = createServer({ gate: fakeGate() });
    const res = await app.inject({ method: 'GET', url: '/v1/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route GET /v1/nothing' },
    });
    await app.close();
  });
});
