import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence } from '../../src/collect/types.js';
import type { Gate } from '../../src/gate.js';
import { createVerifyCache, type VerifyCache } from '../../src/verify/cache.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { editBase64JSON, mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import {
  bytesOf,
  evidenceOf,
  gateOver,
  hex,
  requestFor,
  statementAbout,
  tmp,
} from './gate-support.js';
import { expectDecision } from './report.js';

/**
 * Attack corpus: the verification cache. An allow once cached must not outlive what it rested
 * on: another trusted root, other keys, other identity rules or another policy each decide
 * afresh, and edited evidence is other bytes. One cache shared by every gate below, as a
 * long-lived server whose configuration is reloaded would share it.
 */
const ARTIFACT = Buffer.from('cache attack artifact\n');
const A = hex(ARTIFACT);

let svc: LocalSigstore;
let other: LocalSigstore;
let keyless: Minted;
let keyed: Minted;
let keyDir: string;
const gates: Gate[] = [];

beforeAll(async () => {
  [svc, other] = await Promise.all([startLocalSigstore(), startLocalSigstore()]);
  const statement = statementAbout([A]);
  [keyless, keyed] = await Promise.all([
    mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless' }),
    mintDSSEBundle(svc, { statement, version: '0.3', signer: 'key' }),
  ]);
  keyDir = tmp('keys');
  const stranger = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'key' });
  writeFileSync(path.join(keyDir, 'signer.pub'), keyed.publicKeyPem!);
  writeFileSync(path.join(keyDir, 'stranger.pub'), stranger.publicKeyPem!);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([svc?.close(), other?.close()]);
});

async function gateWith(
  cache: VerifyCache,
  evidence: Evidence[],
  o: { root?: object; doc?: Record<string, unknown> } = {},
): Promise<Gate> {
  const g = await gateOver(svc, {
    evidence,
    root: o.root,
    doc: o.doc,
    deps: { verifyCache: cache },
  });
  gates.push(g);
  return g;
}

/** Allowed once, so the cache holds the allow; then `changed` decides on the same bytes. */
async function primed(cache: VerifyCache, bytes: Buffer, doc: Record<string, unknown> = {}) {
  const g = await gateWith(cache, [evidenceOf(bytes)], { doc });
  const d = await g.check(requestFor(A));
  expect(d.outcome).toBe('allow');
  expect((await g.check(requestFor(A))).evidence[0]!.cached).toBe(true);
}

describe('a stale cached allow', () => {
  it('is not reused after the trusted root changed', async () => {
    const cache = createVerifyCache();
    const bytes = bytesOf(keyless.bundle);
    await primed(cache, bytes);
    const g = await gateWith(cache, [evidenceOf(bytes)], { root: other.trustedRoot });
    const d = await g.check(requestFor(A));
    expectDecision(
      'stale cached allow: trusted root changed',
      undefined,
      d,
      'deny',
      'CERTIFICATE_INVALID',
      d.evidence[0]?.code,
    );
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('is not reused after the trusted keys changed', async () => {
    const cache = createVerifyCache();
    const bytes = bytesOf(keyed.bundle);
    await primed(cache, bytes, { keys: [{ path: path.join(keyDir, 'signer.pub') }] });
    const g = await gateWith(cache, [evidenceOf(bytes)], {
      doc: { keys: [{ path: path.join(keyDir, 'stranger.pub') }] },
    });
    const d = await g.check(requestFor(A));
    expectDecision(
      'stale cached allow: keys changed',
      undefined,
      d,
      'deny',
      'SIGNATURE_INVALID',
      d.evidence[0]?.code,
    );
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('is not reused after the identity rules changed', async () => {
    const cache = createVerifyCache();
    const bytes = bytesOf(keyless.bundle);
    await primed(cache, bytes, {
      identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
    });
    const g = await gateWith(cache, [evidenceOf(bytes)], {
      doc: { identities: [{ san: 'someone-else@example.com', issuer: DEFAULT_IDENTITY.issuer }] },
    });
    const d = await g.check(requestFor(A));
    expectDecision(
      'stale cached allow: identity rules changed',
      undefined,
      d,
      'deny',
      'IDENTITY_MISMATCH',
      d.evidence[0]?.code,
    );
  });

  it('is not reused after the policy changed: the policy runs on every decision, hit or miss', async () => {
    const cache = createVerifyCache();
    const bytes = bytesOf(keyless.bundle);
    await primed(cache, bytes);
    const dir = tmp('policy');
    writeFileSync(
      path.join(dir, 'policy.rego'),
      [
        'package gate',
        '',
        'decision := {"allow": false, "violations": [v], "warnings": [], "rules": ["t.frozen"]}',
        'v := {"id": "t.frozen", "message": "releases are frozen", "remediation": "wait", "attestations": []}',
      ].join('\n'),
    );
    const g = await gateWith(cache, [evidenceOf(bytes)], { doc: { policy: { path: dir } } });
    const d = await g.check(requestFor(A));
    expectDecision('stale cached allow: policy changed', undefined, d, 'deny');
    expect(d.evidence[0]!.cached).toBe(true); // the verification was reused, the allow was not
    expect(d.violations.map((v) => v.id)).toEqual(['t.frozen']);
  });

  it('is not reused for edited evidence, which is other bytes', async () => {
    const cache = createVerifyCache();
    await primed(cache, bytesOf(keyless.bundle));
    const edited = mutate(keyless.bundle, 'dsseEnvelope.payload', (p) =>
      editBase64JSON(p as string, (s: any) => ({ ...s, predicate: { edited: true } })),
    );
    const g = await gateWith(cache, [evidenceOf(bytesOf(edited))]);
    const d = await g.check(requestFor(A));
    expectDecision(
      'stale cached allow: evidence edited',
      undefined,
      d,
      'deny',
      'TLOG_BODY_MISMATCH',
      d.evidence[0]?.code,
    );
    expect(d.evidence[0]!.cached).toBeUndefined();
  });
});
