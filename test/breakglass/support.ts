import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import type { Source } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import { createGate, type Gate, type GateDeps } from '../../src/gate.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle, type KeylessIdentity } from '../support/mint.js';
import type { LocalSigstore } from '../support/sigstore-services.js';

/**
 * Shared by the break-glass tests: who may break glass, requests signed by the local Sigstore
 * services, and a real gate (the requires-provenance policy: with no evidence every subject is
 * denied, so only an override lets one through) over a fresh SQLite ledger.
 */
export const hex = (s: string): string => createHash('sha256').update(s).digest('hex');
export const REQUIRES_PROVENANCE = path.join(FIXTURES, 'policies', 'requires-provenance');

export const ONCALL: KeylessIdentity = {
  san: 'oncall@acme.example',
  issuer: 'https://accounts.example',
};
export const APPROVER: KeylessIdentity = {
  san: 'lead@acme.example',
  issuer: 'https://accounts.example',
};
export const STRANGER: KeylessIdentity = {
  san: 'mallory@evil.example',
  issuer: 'https://accounts.example',
};

const who = (i: KeylessIdentity) => ({ san: i.san, issuer: i.issuer });

/** production needs one approver; dev none; staging is single use; nothing for qa. */
export const RULES = {
  production: {
    requesters: [who(ONCALL)],
    approvers: [who(APPROVER)],
    approvals: 1,
    max_expiry_minutes: 120,
  },
  dev: { requesters: [who(ONCALL)], max_expiry_minutes: 120 },
  staging: { requesters: [who(ONCALL)], max_expiry_minutes: 120, reuse: 'single' },
};

let n = 0;
export function statementOf(
  subjects: string[],
  over: Partial<Parameters<typeof breakGlassStatement>[0]> = {},
) {
  return breakGlassStatement({
    subjects: subjects.map((h) => ({ digest: { algorithm: 'sha256' as const, hex: h } })),
    environment: 'production',
    justification: 'customer outage, the fix must ship now',
    ticket: 'INC-7',
    requester: ONCALL.san,
    expiresInMinutes: 60,
    now: new Date(),
    requestId: `req-${process.pid}-${Date.now()}-${n++}`,
    ...over,
  });
}

/** A bundle (as JSON) of `statement` signed by `identity`. */
export async function signed(
  svc: LocalSigstore,
  identity: KeylessIdentity,
  statement: object,
): Promise<unknown> {
  const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless', identity });
  return m.bundle;
}

/** A production request for `subjects`, with its approval: the bundles POST /v1/break-glass takes. */
export async function approvedRequest(
  svc: LocalSigstore,
  subjects: string[],
  over: Partial<Parameters<typeof breakGlassStatement>[0]> = {},
) {
  const statement = statementOf(subjects, over);
  const bundles = [await signed(svc, ONCALL, statement), await signed(svc, APPROVER, statement)];
  return { id: statement.predicate.requestId, statement, bundles };
}

export const tmp = (prefix: string): string =>
  mkdtempSync(path.join(tmpdir(), `gate-bg-${prefix}-`));

/** No evidence anywhere: the policy denies every subject. */
export const nothing: Source = {
  name: 'memory',
  collect: async () => ({ evidence: [], rejected: [], failures: [] }),
};

/**
 * A gate.yaml for `svc`: its trusted root, the requires-provenance policy with RULES, a SQLite
 * ledger, more configuration merged in. Returns the folder and the file.
 */
export function writeConfig(
  svc: LocalSigstore,
  doc: Record<string, unknown> = {},
  rules: object = RULES,
): { dir: string; file: string; ledger: string; doc: Record<string, unknown> } {
  const dir = tmp('config');
  const root = path.join(dir, 'root.json');
  writeFileSync(root, JSON.stringify(svc.trustedRoot));
  const ledger = path.join(dir, 'ledger.db');
  const full = {
    trustedRoot: root,
    policy: { path: REQUIRES_PROVENANCE, config: { break_glass: { environments: rules } } },
    ledger: { path: ledger },
    ...doc,
  };
  const file = path.join(dir, 'gate.yaml');
  writeFileSync(file, JSON.stringify(full));
  return { dir, file, ledger, doc: full };
}

/** A real gate over `writeConfig`'s configuration, its sources replaced by `nothing`. */
export async function gateFor(
  svc: LocalSigstore,
  doc: Record<string, unknown> = {},
  rules: object = RULES,
  deps: GateDeps = {},
  env: Record<string, string> = {},
): Promise<{ gate: Gate; ledger: string; dir: string; file: string }> {
  const c = writeConfig(svc, doc, rules);
  const config = normalise(c.doc, c.dir, hex(c.file), 'config', env);
  const gate = await createGate(config, { sources: () => [nothing], ...deps });
  return { gate, ledger: c.ledger, dir: c.dir, file: c.file };
}

export const podReview = (
  uid: string,
  images: string[],
  annotations: Record<string, string> = {},
  kind = 'Pod',
) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid,
    kind: { group: '', version: 'v1', kind },
    operation: 'CREATE',
    namespace: 'shop',
    object: {
      kind,
      metadata: { name: uid, annotations },
      spec: {
        containers: images.map((h, i) => ({
          name: `c${i}`,
          image: `ghcr.io/acme/app@sha256:${h}`,
        })),
      },
    },
  },
});

/** A workload whose pod template carries the annotation (what its ReplicaSets and Pods inherit). */
export const workloadReview = (
  uid: string,
  kind: 'Deployment' | 'ReplicaSet',
  images: string[],
  annotations: Record<string, string>,
) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid,
    kind: { group: 'apps', version: 'v1', kind },
    operation: 'CREATE',
    namespace: 'shop',
    object: {
      kind,
      metadata: { name: uid },
      spec: {
        replicas: 3,
        template: {
          metadata: { labels: { app: 'shop' }, annotations },
          spec: {
            containers: images.map((h, i) => ({
              name: `c${i}`,
              image: `ghcr.io/acme/app@sha256:${h}`,
            })),
          },
        },
      },
    },
  },
});
