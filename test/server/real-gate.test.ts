import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalise } from '../../src/config.js';
import { createServer } from '../../src/server/app.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { loadTrustedRoot } from '../../src/verify/trust.js';
import { VSA_PREDICATE_TYPE } from '../../src/vsa.js';
import { startRealGate, type RealGate } from './real-gate.js';

/**
 * The server over a real gate: the compiled default policy, bundles minted and verified against
 * the local Sigstore services' trusted root, and a JSON Lines ledger (see real-gate.ts).
 */
let real: RealGate;
let app: FastifyInstance;
let ready = false;

beforeAll(async () => {
  real = await startRealGate();
  app = createServer({
    gate: real.gate,
    config: normalise({ ledger: { path: real.ledgerPath } }, '/', 'x'),
    tokens: { audit: ['auditor'] },
    ready: () => ready,
  });
});
afterAll(async () => {
  await app.close();
  await real.close();
});

const decide = (hex: string, environment = 'dev') =>
  app.inject({
    method: 'POST',
    url: '/v1/decisions',
    payload: { subjects: [`sha256:${hex}`], environment },
  });

const pod = (hex: string) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: `uid-${hex.slice(0, 8)}`,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: 'shop',
    object: {
      kind: 'Pod',
      metadata: { name: 'app' },
      spec: { containers: [{ name: 'app', image: `ghcr.io/acme/app@sha256:${hex}` }] },
    },
  },
});

describe('POST /v1/decisions on a real gate', () => {
  it('allows an artifact with trusted provenance, and records the decision first', async () => {
    const res = await decide(real.allowed);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      outcome: 'allow',
      allow: true,
      evidence: [{ status: 'verified', predicateType: 'https://slsa.dev/provenance/v1' }],
    });
    expect(await real.recorded(body.id)).toBe(true);
  });

  it('denies an artifact without provenance with 200 and allow: false', async () => {
    const res = await decide(real.denied);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      outcome: 'deny',
      allow: false,
      violations: [{ id: 'provenance.present' }],
    });
  });

  it('answers 503 with the decision when a source is down', async () => {
    const res = await decide(real.unreachable);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'SOURCE_UNREACHABLE' },
    });
  });
});

describe('POST /v1/admission on a real gate', () => {
  it('admits a pod whose image has trusted provenance and denies one without', async () => {
    const yes = await app.inject({
      method: 'POST',
      url: '/v1/admission?env=dev',
      payload: pod(real.allowed),
    });
    expect(yes.json().response).toMatchObject({
      uid: `uid-${real.allowed.slice(0, 8)}`,
      allowed: true,
    });
    const no = await app.inject({
      method: 'POST',
      url: '/v1/admission?env=dev',
      payload: pod(real.denied),
    });
    expect(no.json().response).toMatchObject({
      allowed: false,
      status: { code: 403, message: expect.stringMatching(/provenance\.present/) },
    });
  });
});

describe('what the real gate recorded', () => {
  it('lists it on the audit route, newest first', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/audit/decisions?subject=sha256:${real.denied}`,
      headers: { authorization: 'Bearer auditor' },
    });
    expect(res.statusCode).toBe(200);
    const decisions = res.json().decisions;
    expect(decisions.map((d: { outcome: string }) => d.outcome)).toEqual(['deny', 'deny']);
    expect(decisions[0].subjects[0]).toEqual({
      name: 'ghcr.io/acme/app',
      digest: { sha256: real.denied },
      image: {
        reference: `ghcr.io/acme/app@sha256:${real.denied}`,
        repository: 'ghcr.io/acme/app',
      },
    });
  });

  it('counts decisions and requests in /metrics', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/^decisions_total\{outcome="allow",environment="dev"\} 2$/m);
    expect(text).toMatch(/^decisions_total\{outcome="deny",environment="dev"\} 2$/m);
    expect(text).toMatch(/^decisions_total\{outcome="error",environment="dev"\} 1$/m);
    expect(text).toMatch(/^decision_duration_seconds_count\{outcome="allow"\} 2$/m);
    expect(text).toMatch(
      /^http_requests_total\{method="POST",route="\/v1\/decisions",status_code="503"\} 1$/m,
    );
  });
});

describe('POST /v1/decisions with "summary": true', () => {
  const ask = (hex: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: { subjects: [`sha256:${hex}`], environment: 'dev', summary: true },
    });

  it('returns a verification summary signed by the gate for an allow', async () => {
    const res = await ask(real.allowed);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.outcome).toBe('allow');
    // a Sigstore bundle without a log entry: the gate's key, declared so, is its only trust
    const summary = verifyAttestation(Buffer.from(JSON.stringify(body.summary)), {
      trust: loadTrustedRoot(),
      keys: [{ pem: real.summaryKeyPem, transparency: 'optional' }],
      subject: { digest: { algorithm: 'sha256', hex: real.allowed } },
    });
    expect(summary.predicateType).toBe(VSA_PREDICATE_TYPE);
    expect(summary.predicate).toMatchObject({
      verificationResult: 'PASSED',
      decisionId: body.id,
      verifier: { id: 'https://gate-test.example/gate' },
      // the evidence the allow rested on, as the decision names it
      inputAttestations: body.evidence
        .filter((e: { status: string }) => e.status === 'verified')
        .map((e: { id: string; source: string }) => ({ uri: e.source, digest: { sha256: e.id } })),
    });
    expect((summary.predicate as { inputAttestations: unknown[] }).inputAttestations).not.toEqual(
      [],
    );
  });

  it('returns none for a deny', async () => {
    const body = (await ask(real.denied)).json();
    expect(body.outcome).toBe('deny');
    expect(body.summary).toBeUndefined();
  });
});

describe('health', () => {
  it('is live always and ready only when told', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    ready = true;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    ready = false;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });
});
