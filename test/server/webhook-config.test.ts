import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalise, type GateConfig } from '../../src/config.js';
import { admissionDeadlineMs } from '../../src/server/admission-review.js';
import { createServer } from '../../src/server/app.js';
import { fakeGate } from './fake-gate.js';

/**
 * The Kubernetes manifests in examples/kubernetes (docs/kubernetes.md), checked against the
 * server's real routes and against the rules the API server itself applies to a webhook
 * configuration: a manifest that does not match the server would fail open or not apply at all.
 */
type Doc = Record<string, any>;
const load = (name: string): Doc[] =>
  parseAllDocuments(
    readFileSync(new URL(`../../examples/kubernetes/${name}`, import.meta.url), 'utf8'),
  ).map((d) => d.toJS() as Doc);
const serverDocs = load('gate-server.yaml');
const webhookConfig = load('webhook.yaml').find(
  (d) => d.kind === 'ValidatingWebhookConfiguration',
)!;
const webhooks: Doc[] = webhookConfig.webhooks;
const service = serverDocs.find((d) => d.kind === 'Service')!;

let config: GateConfig;
beforeAll(() => {
  const gateYaml = serverDocs.find((d) => d.kind === 'ConfigMap')!.data['gate.yaml'];
  const env = { GATE_LEDGER_URL: 'postgres://gate@db.example/gate' };
  config = normalise(parseAllDocuments(gateYaml)[0]!.toJS(), '/etc/gate', 'digest', 'config', env);
});

/** k8s.io/apiserver webhook validation: every path segment is a DNS-1123 subdomain. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('the ValidatingWebhookConfiguration', () => {
  it('has one webhook per environment, each failing closed', () => {
    expect(webhooks.length).toBeGreaterThanOrEqual(2);
    const envs = webhooks.map((w) => w.clientConfig.service.path.split('/').pop());
    expect(new Set(envs).size).toBe(webhooks.length);
    for (const w of webhooks) {
      expect(w.failurePolicy, w.name).toBe('Fail');
      expect(w.sideEffects, w.name).toBe('None');
      expect(w.admissionReviewVersions, w.name).toEqual(['v1']);
      expect(w.timeoutSeconds).toBeGreaterThanOrEqual(1);
      expect(w.timeoutSeconds).toBeLessThanOrEqual(30);
      const env = w.clientConfig.service.path.split('/').pop();
      expect(w.namespaceSelector.matchLabels['gate.dev/environment'], w.name).toBe(env);
    }
  });

  it('has paths the API server accepts: no query, every segment a DNS-1123 subdomain', () => {
    for (const w of webhooks) {
      const path: string = w.clientConfig.service.path;
      expect(path).not.toMatch(/[?#]/);
      for (const segment of path.slice(1).split('/')) {
        expect(segment.length, path).toBeLessThanOrEqual(253);
        expect(segment, path).toMatch(DNS1123_SUBDOMAIN);
      }
    }
  });

  it('calls the gate Service on its https port', () => {
    for (const w of webhooks) {
      expect(w.clientConfig.service).toMatchObject({
        name: service.metadata.name,
        namespace: service.metadata.namespace,
        port: service.spec.ports[0].port,
      });
    }
  });

  it('gives each webhook a timeout above the deadline the gate decides within', () => {
    for (const w of webhooks) {
      const timeoutMs = w.timeoutSeconds * 1000;
      const deadline = Math.min(
        config.deadlineMs,
        admissionDeadlineMs(`${w.timeoutSeconds}s`, config.admission.deadlineMs),
      );
      expect(deadline, w.name).toBeLessThan(timeoutMs);
    }
  });

  it('points every webhook at a route that answers an AdmissionReview for its environment', async () => {
    const gate = fakeGate();
    const app = createServer({ gate, admission: config.admission });
    const A = 'a'.repeat(64);
    for (const [i, w] of webhooks.entries()) {
      const env = w.clientConfig.service.path.split('/').pop();
      const review = (image: string) => ({
        apiVersion: w.admissionReviewVersions[0] === 'v1' ? 'admission.k8s.io/v1' : 'unknown',
        kind: 'AdmissionReview',
        request: {
          uid: `uid-${w.name}`,
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          operation: 'CREATE',
          namespace: 'shop',
          object: { spec: { template: { spec: { containers: [{ name: 'web', image }] } } } },
        },
      });
      // As the API server calls it: the configured path with ?timeout= appended.
      const url = `${w.clientConfig.service.path}?timeout=${w.timeoutSeconds}s`;
      const allowed = await app.inject({ method: 'POST', url, payload: review(`web@sha256:${A}`) });
      expect(allowed.statusCode).toBe(200);
      expect(allowed.json()).toEqual({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: expect.objectContaining({ uid: `uid-${w.name}`, allowed: true }),
      });
      const call = gate.calls[i] as { environment: string; deadlineMs?: number };
      expect(call.environment).toBe(env);
      expect(call.deadlineMs).toBeLessThan(w.timeoutSeconds * 1000);
      const denied = await app.inject({ method: 'POST', url, payload: review('web:latest') });
      expect(denied.json().response).toMatchObject({ allowed: false, status: { code: 403 } });
    }
    await app.close();
  });
});
