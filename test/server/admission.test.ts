import { describe, expect, it } from 'vitest';
import { GateError } from '../../src/errors.js';
import { parsePinnedImage } from '../../src/server/pod-specs.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { decisionFor, fakeGate, type Answer } from './fake-gate.js';

/**
 * The admission webhook's adapter with a fake gate: finding pod specs, pinning, the AdmissionReview
 * envelope, failing closed. real-gate.test.ts admits and denies a pod on a real gate.
 */
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const pod = <T extends object>(spec: T) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1' },
  spec,
});
const containers = (...images: string[]) => images.map((image, i) => ({ name: `c${i}`, image }));

function review(kind: string, object: unknown, extra: object = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-123',
      kind: { group: '', version: 'v1', kind },
      operation: 'CREATE',
      namespace: 'shop',
      object,
      ...extra,
    },
  };
}

async function admit(
  payload: unknown,
  answer?: Answer,
  url = '/v1/admission?env=production',
  opts: Partial<ServerOptions> = {},
) {
  const gate = fakeGate(answer);
  const app = createServer({ gate, ...opts });
  const res = await app.inject({ method: 'POST', url, payload: payload as object });
  await app.close();
  return { res, body: res.json(), response: res.json().response, gate };
}

describe('POST /v1/admission', () => {
  it('allows a pinned pod, checking its images as one release set, and echoes the uid', async () => {
    const object = pod({
      containers: containers(
        `ghcr.io/acme/web:1.2@sha256:${A}`,
        `registry:5000/acme/sidecar@sha256:${B}`,
      ),
    });
    const { res, body, gate } = await admit(review('Pod', object));
    expect(res.statusCode).toBe(200);
    expect(body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'uid-123', allowed: true },
    });
    expect(gate.calls).toHaveLength(1);
    expect(gate.calls[0]).toMatchObject({
      environment: 'production',
      subjects: [
        { name: 'ghcr.io/acme/web', digest: { algorithm: 'sha256', hex: A } },
        { name: 'registry:5000/acme/sidecar', digest: { hex: B } },
      ],
      context: {
        admission: {
          namespace: 'shop',
          kind: 'Pod',
          name: 'web-1',
          operation: 'CREATE',
          uid: 'uid-123',
        },
      },
    });
    expect(body.response.auditAnnotations.decision).toMatch(/^decision-/);
  });

  it('denies a tag-only image, naming the container and the image, without asking the gate', async () => {
    const object = pod({ containers: containers(`ghcr.io/acme/web@sha256:${A}`, 'nginx:1.25') });
    const { response, gate } = await admit(review('Pod', object));
    expect(response).toMatchObject({ uid: 'uid-123', allowed: false, status: { code: 403 } });
    expect(response.status.message).toBe(
      'container c1: image "nginx:1.25" is not pinned by digest (use NAME@sha256:<64 hex>)',
    );
    expect(gate.calls).toHaveLength(0);
  });

  it('checks init and ephemeral containers too', async () => {
    const object = pod({
      containers: containers(`app@sha256:${A}`),
      initContainers: [{ name: 'migrate', image: 'migrate:latest' }],
      ephemeralContainers: [{ name: 'debug', image: `busybox@sha256:${C}` }],
    });
    const denied = await admit(review('Pod', object));
    expect(denied.response.status.message).toMatch(
      /^init container migrate: image "migrate:latest" is not pinned/,
    );
    object.spec.initContainers[0]!.image = `migrate@sha256:${B}`;
    const allowed = await admit(review('Pod', object));
    expect(allowed.response.allowed).toBe(true);
    expect(allowed.gate.calls[0]!.subjects.map((s) => s.digest.hex)).toEqual([A, B, C]);
  });

  it('finds the pod spec of a Deployment and of a CronJob, and checks a digest used twice once', async () => {
    const spec = { containers: containers(`web@sha256:${A}`, `web-copy@sha256:${A}`) };
    const deployment = {
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { template: { spec } },
    };
    const cronjob = {
      kind: 'CronJob',
      metadata: { name: 'nightly' },
      spec: { jobTemplate: { spec: { template: { spec } } } },
    };
    for (const [kind, object] of [
      ['Deployment', deployment],
      ['CronJob', cronjob],
    ] as const) {
      const { response, gate } = await admit(review(kind, object));
      expect(response.allowed, kind).toBe(true);
      // the first reference names the subject and says where its attestations are searched
      expect(gate.calls[0]!.subjects).toEqual([
        {
          name: 'web',
          digest: { algorithm: 'sha256', hex: A },
          image: { reference: `web@sha256:${A}`, repository: 'index.docker.io/library/web' },
        },
      ]);
    }
    const broken = await admit(review('Deployment', { metadata: { name: 'web' }, spec: {} }));
    expect(broken.response).toMatchObject({
      allowed: false,
      status: { code: 403, message: expect.stringMatching(/^Deployment web carries no pod spec/) },
    });
  });

  it('denies with the violations and the decision id when the gate denies', async () => {
    const { response } = await admit(
      review('Pod', pod({ containers: containers(`web@sha256:${A}`) })),
      (req) => decisionFor(req, 'deny', { id: 'd-9' }),
    );
    expect(response).toMatchObject({
      allowed: false,
      status: {
        code: 403,
        message: 'denied for production (decision d-9): tests.passed: tests failed',
      },
    });
  });

  it('fails closed with 503 when the gate could not decide, or threw', async () => {
    const object = pod({ containers: containers(`web@sha256:${A}`) });
    const error = await admit(review('Pod', object), (req) => decisionFor(req, 'error'));
    expect(error.res.statusCode).toBe(200);
    expect(error.response).toMatchObject({
      uid: 'uid-123',
      allowed: false,
      status: { code: 503, message: expect.stringMatching(/could not decide.*SOURCE_UNREACHABLE/) },
    });
    const thrown = await admit(review('Pod', object), () => {
      throw new GateError('LEDGER_UNAVAILABLE', 'disk full');
    });
    expect(thrown.response).toMatchObject({
      allowed: false,
      status: { code: 503, message: 'the gate could not decide: LEDGER_UNAVAILABLE: disk full' },
    });
  });

  it('shows a dry-run would-deny as warnings on an allowed response', async () => {
    const { response } = await admit(
      review('Pod', pod({ containers: containers(`web@sha256:${A}`) })),
      (req) => decisionFor(req, 'deny', { allow: true, mode: 'dry-run' }),
    );
    expect(response).toMatchObject({
      allowed: true,
      warnings: ['gate dry-run would deny: tests.passed: tests failed'],
    });
  });

  it('takes the environment from ?env=, else the server default, else denies', async () => {
    const object = review('Pod', pod({ containers: containers(`web@sha256:${A}`) }));
    const byDefault = await admit(object, undefined, '/v1/admission', {
      admissionEnvironment: 'staging',
    });
    expect(byDefault.gate.calls[0]!.environment).toBe('staging');
    const none = await admit(object, undefined, '/v1/admission');
    expect(none.response).toMatchObject({
      allowed: false,
      status: { code: 500, message: expect.stringMatching(/end its path with \/NAME/) },
    });
    const bad = await admit(object, undefined, '/v1/admission?env=bad%20env');
    expect([bad.res.statusCode, bad.response.allowed]).toEqual([200, false]);
    const two = await admit(object, undefined, '/v1/admission/staging?env=production');
    expect(two.response).toMatchObject({
      allowed: false,
      status: { message: 'the webhook url names two environments: staging and production' },
    });
  });

  it('lets through what deploys nothing: deletes, status updates, exempt kinds', async () => {
    const object = pod({ containers: containers('nginx:latest') });
    for (const extra of [
      { operation: 'DELETE', object: null },
      { operation: 'UPDATE', subResource: 'status' },
    ]) {
      const { response, gate } = await admit(review('Pod', object, extra));
      expect(response.allowed).toBe(true);
      expect(gate.calls).toHaveLength(0);
    }
    const configMap = review('ConfigMap', { data: {} });
    const exempt = { admission: { exemptKinds: ['ConfigMap'] } };
    expect((await admit(configMap, undefined, undefined, exempt)).response.allowed).toBe(true);
    const debug = await admit(
      review('Pod', object, { operation: 'UPDATE', subResource: 'ephemeralcontainers' }),
    );
    expect(debug.response.allowed).toBe(false);
  });

  it.each([
    ['not json', '{"apiVersion": ', 'INPUT_MALFORMED_JSON'],
    ['nested too deep', `${'['.repeat(200)}${']'.repeat(200)}`, 'INPUT_TOO_DEEP'],
  ])('answers a body it cannot parse (%s) with a coded 400', async (_what, payload, code) => {
    const app = createServer({ gate: fakeGate() });
    const headers = { 'content-type': 'application/json' };
    const res = await app.inject({ method: 'POST', url: '/v1/admission/dev', headers, payload });
    await app.close();
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
  });

  it('parses a custom resource nested 100 levels deep', async () => {
    let deep: object = { spec: { containers: containers(`web@sha256:${A}`) } };
    for (let i = 0; i < 95; i++) deep = { nested: deep };
    const { res, response } = await admit(review('DeepThing', deep));
    expect(res.statusCode).toBe(200);
    expect(response.allowed).toBe(true);
  });
});

describe('parsePinnedImage', () => {
  it.each([
    [`nginx@sha256:${A}`, { repository: 'nginx', hex: A }],
    [`nginx:1.25@sha256:${A}`, { repository: 'nginx', hex: A }],
    [`localhost:5000/team/app@sha256:${A}`, { repository: 'localhost:5000/team/app', hex: A }],
    [`localhost:5000/team/app:v2@sha256:${A}`, { repository: 'localhost:5000/team/app', hex: A }],
  ])('reads %s', (image, expected) => expect(parsePinnedImage(image)).toEqual(expected));

  it.each([
    'nginx',
    'nginx:1.25',
    `nginx@sha256:${A.toUpperCase()}`,
    `nginx@sha256:${A}0`,
    `nginx@sha512:${A}${A}`,
    `@sha256:${A}`,
    '',
  ])('refuses %j', (image) => expect(parsePinnedImage(image)).toBeNull());
});
