import { describe, expect, it } from 'vitest';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { fakeGate } from './fake-gate.js';

/**
 * Issue 8, item 7: the admission webhook fails closed everywhere. Each case here was an allow (or
 * an HTTP 400, which `failurePolicy: Ignore` turns into an allow) before the fix.
 */
const A = 'a'.repeat(64);
const containers = (...images: string[]) => images.map((image, i) => ({ name: `c${i}`, image }));

function review(kind: string, object: unknown, extra: object = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'uid-7', kind: { kind }, operation: 'CREATE', namespace: 'shop', object },
    ...extra,
  };
}

async function admit(
  payload: unknown,
  url = '/v1/admission?env=production',
  opts: Partial<ServerOptions> = {},
) {
  const gate = fakeGate();
  const app = createServer({ gate, ...opts });
  const res = await app.inject({ method: 'POST', url, payload: payload as object });
  await app.close();
  return { res, body: res.json(), response: res.json().response, gate };
}

const deadlineOf = (call: unknown) => (call as { deadlineMs?: number }).deadlineMs;

describe('kinds outside the old table', () => {
  const unpinned = { containers: containers('nginx:latest') };
  it.each([
    ['an Argo Rollout', 'Rollout', { spec: { template: { spec: unpinned } } }],
    ['a PodTemplate', 'PodTemplate', { template: { spec: unpinned } }],
    ['a lower-case pod', 'pod', { spec: unpinned }],
    [
      'a custom resource with pod templates per replica type',
      'MPIJob',
      { spec: { mpiReplicaSpecs: { Launcher: { template: { spec: unpinned } } } } },
    ],
    ['a custom resource with a bare pod spec', 'Sandbox', { spec: { podSpec: unpinned } }],
  ])('denies %s running an unpinned image', async (_what, kind, object) => {
    const { res, response, gate } = await admit(review(kind, object));
    expect(res.statusCode).toBe(200);
    expect(response).toMatchObject({ uid: 'uid-7', allowed: false, status: { code: 403 } });
    expect(response.status.message).toMatch(/image "nginx:latest" is not pinned by digest/);
    expect(gate.calls).toHaveLength(0);
  });

  it('decides the images of every pod spec a custom resource carries', async () => {
    const B = 'b'.repeat(64);
    const object = {
      spec: {
        replicaSpecs: {
          Launcher: { template: { spec: { containers: containers(`launch@sha256:${A}`) } } },
          Worker: { template: { spec: { initContainers: containers(`work@sha256:${B}`) } } },
        },
      },
    };
    const { response, gate } = await admit(review('TFJob', object));
    expect(response.allowed).toBe(true);
    expect(gate.calls[0]!.subjects.map((s) => s.name)).toEqual(['launch', 'work']);
  });

  it('denies an object whose images cannot be found, unless its kind is exempt', async () => {
    const rollout = { spec: { workloadRef: { kind: 'Deployment', name: 'web' } } };
    const denied = await admit(review('Rollout', rollout));
    expect(denied.response).toMatchObject({ allowed: false, status: { code: 403 } });
    expect(denied.response.status.message).toMatch(
      /^Rollout \(unnamed\) carries no pod spec: the gate cannot see its images; .*admission.exemptKinds/,
    );
    const configMap = await admit(review('ConfigMap', { data: {} }));
    expect(configMap.response.allowed).toBe(false);
    const exempt = { admission: { exemptKinds: ['ConfigMap', 'Rollout'] } };
    for (const [kind, object] of [
      ['ConfigMap', { data: {} }],
      ['Rollout', rollout],
    ] as const) {
      const { response, gate } = await admit(review(kind, object), undefined, exempt);
      expect(response.allowed, kind).toBe(true);
      expect(gate.calls).toHaveLength(0);
    }
  });

  it('still checks the images an exempt kind does carry', async () => {
    const object = { spec: { template: { spec: { containers: containers('nginx:1') } } } };
    const exempt = { admission: { exemptKinds: ['Rollout'] } };
    const { response } = await admit(review('Rollout', object), undefined, exempt);
    expect(response).toMatchObject({ allowed: false, status: { code: 403 } });
  });

  it('denies a pod spec with no containers at all', async () => {
    const { response } = await admit(review('Pod', { spec: { containers: [] } }));
    expect(response).toMatchObject({ allowed: false, status: { code: 403 } });
  });
});

describe('every review the server can parse is answered with an AdmissionReview', () => {
  it('answers a v1beta1 review as v1beta1, denying it with the fix', async () => {
    const payload = review(
      'Pod',
      { spec: { containers: containers(`web@sha256:${A}`) } },
      {
        apiVersion: 'admission.k8s.io/v1beta1',
      },
    );
    const { res, body, gate } = await admit(payload);
    expect(res.statusCode).toBe(200);
    expect(body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: 'uid-7', allowed: false, status: { code: 400 } },
    });
    expect(body.response.status.message).toMatch(/admissionReviewVersions: \["v1"\]/);
    expect(gate.calls).toHaveLength(0);
  });

  it.each([
    ['not an object', []],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['no uid', { ...review('Pod', {}), request: { kind: { kind: 'Pod' }, operation: 'CREATE' } }],
    ['a uid that is not a string', { ...review('Pod', {}), request: { uid: 7 } }],
    ['another kind of document', { ...review('Pod', {}), kind: 'ConversionReview' }],
    [
      'no kind in the request',
      { ...review('Pod', {}), request: { uid: 'u', operation: 'CREATE' } },
    ],
  ])('denies a malformed review (%s) with 200 and allowed: false', async (_what, payload) => {
    const { res, body, gate } = await admit(payload);
    expect(res.statusCode).toBe(200);
    expect(body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { allowed: false, status: { code: 400 } },
    });
    expect(body.response.status.message).toMatch(/^malformed admission review: /);
    expect(gate.calls).toHaveLength(0);
  });

  it('denies a bad ?env= inside the review, echoing the uid', async () => {
    const object = { spec: { containers: containers(`web@sha256:${A}`) } };
    const { res, response, gate } = await admit(
      review('Pod', object),
      '/v1/admission?env=bad%20env',
    );
    expect(res.statusCode).toBe(200);
    expect(response).toMatchObject({ uid: 'uid-7', allowed: false, status: { code: 400 } });
    expect(response.status.message).toMatch(/environment "bad env" is not a valid name/);
    expect(gate.calls).toHaveLength(0);
  });

  it('denies an operation it does not know rather than letting it through', async () => {
    const object = { spec: { containers: containers('nginx:latest') } };
    const deleted = review('Pod', object);
    deleted.request.operation = 'DELETE';
    expect((await admit(deleted)).response.allowed).toBe(true);
    const odd = review('Pod', object);
    odd.request.operation = 'create';
    expect((await admit(odd)).response.allowed).toBe(false);
  });
});

describe('the environment in the path', () => {
  it('takes the environment from /v1/admission/NAME, as Kubernetes allows no query in service.path', async () => {
    const object = { spec: { containers: containers(`web@sha256:${A}`) } };
    const { response, gate } = await admit(review('Pod', object), '/v1/admission/staging');
    expect(response.allowed).toBe(true);
    expect(gate.calls[0]!.environment).toBe('staging');
  });
});

describe('the deadline below the webhook timeout', () => {
  const object = { spec: { containers: containers(`web@sha256:${A}`) } };
  it.each([
    ['?timeout=10s', {}, 8000],
    ['?timeout=30s', {}, 24_000],
    ['?timeout=2s', {}, 1500],
    ['?timeout=1s', {}, 500],
    ['?timeout=1m30s', {}, 72_000],
    ['?timeout=500ms', {}, 100],
    ['', {}, 8000],
    ['?timeout=bogus', {}, 8000],
    ['?timeout=10s', { admission: { deadlineMs: 5000 } }, 5000],
    ['?timeout=2s', { admission: { deadlineMs: 5000 } }, 1500],
  ])('passes a deadline for %s (config %j): %d ms', async (query, opts, expected) => {
    const { response, gate } = await admit(
      review('Pod', object),
      `/v1/admission/production${query}`,
      opts,
    );
    expect(response.allowed).toBe(true);
    expect(deadlineOf(gate.calls[0])).toBe(expected);
  });
});
