import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence, Source } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import type { Decision } from '../../src/decision.js';
import { createGate, type Gate } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { createVerifyCache, type VerifyCache } from '../../src/verify/cache.js';
import { FIXTURES } from '../helpers.js';
import { editBase64JSON, mutate } from '../support/mutate.js';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The verification cache cannot be used against the gate: a result is reused only for the same
 * evidence bytes on the same trusted root, identity rules and keys; the policy runs on every
 * decision; a failure is kept only briefly, with its reason; evidence about other subjects is
 * set aside before any cryptography. Real bundles from the local Sigstore services.
 */
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const APP = hex('cached app');
const OTHER = hex('another app');
const statement = (digest: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: digest } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
});

let svc: LocalSigstore;
let other: LocalSigstore;
let dir: string;
const gates: Gate[] = [];

beforeAll(async () => {
  [svc, other] = await Promise.all([startLocalSigstore(), startLocalSigstore()]);
  dir = mkdtempSync(path.join(tmpdir(), 'gate-cache-'));
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([svc?.close(), other?.close()]);
});

const bytesOf = (bundle: object) => Buffer.from(JSON.stringify(bundle));
const evidenceOf = (bytes: Buffer, n = 0): Evidence => ({
  id: createHash('sha256').update(bytes).digest('hex'),
  source: `memory:${n}`,
  kind: 'bundle',
  bytes,
});
const memory = (evidence: Evidence[]): Source => ({
  name: 'memory',
  collect: async () => ({ evidence, rejected: [], failures: [] }),
});

async function gateWith(
  evidence: Evidence[],
  o: { cache: VerifyCache; root?: LocalSigstore; doc?: Record<string, unknown> },
): Promise<Gate> {
  const rootFile = path.join(mkdtempSync(path.join(dir, 'r-')), 'root.json');
  writeFileSync(rootFile, JSON.stringify((o.root ?? svc).trustedRoot));
  const config = normalise(
    {
      trustedRoot: rootFile,
      policy: { path: path.join(FIXTURES, 'policies', 'requires-provenance') },
      ledger: { path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db') },
      ...o.doc,
    },
    dir,
    'test-config',
  );
  const gate = await createGate(config, {
    sources: () => [memory(evidence)],
    verifyCache: o.cache,
  });
  gates.push(gate);
  return gate;
}

const decide = (gate: Gate, environment = 'dev', subjects = [APP]) =>
  gate.check({
    subjects: subjects.map((h) => ({ digest: { algorithm: 'sha256', hex: h } })),
    environment,
  });
const reportsOf = (d: Decision) => d.evidence.map((e) => [e.status, e.code, e.cached === true]);

describe('the verification cache', () => {
  let keyless: Buffer;
  beforeAll(async () => {
    const m = await mintDSSEBundle(svc, {
      statement: statement(APP),
      version: '0.3',
      signer: 'keyless',
    });
    keyless = bytesOf(m.bundle);
  });

  it('reuses a result for the same bytes, says so, and still runs the policy on the hit', async () => {
    const cache = createVerifyCache();
    const gate = await gateWith([evidenceOf(keyless)], { cache });
    const first = await decide(gate);
    expect(first.outcome).toBe('allow');
    expect(reportsOf(first)).toEqual([['verified', undefined, false]]);
    const second = await decide(gate);
    expect(second.outcome).toBe('allow');
    expect(reportsOf(second)).toEqual([['verified', undefined, true]]);
    // a hit never skips a rule: the same cached evidence, an environment the policy refuses
    const refused = await decide(gate, 'staging');
    expect(refused.outcome).toBe('deny');
    expect(refused.violations.map((v) => v.id)).toEqual(['test.environment']);
    expect(reportsOf(refused)).toEqual([['verified', undefined, true]]);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1, entries: 1 });
    // the hit is recorded: the ledger holds the decision as answered
    const recorded = await gate.ledger!.get(second.id);
    expect(recorded?.decision.evidence[0]).toMatchObject({ cached: true });
  });

  it('never reuses a result under another trusted root', async () => {
    const cache = createVerifyCache();
    const trusted = await gateWith([evidenceOf(keyless)], { cache });
    expect((await decide(trusted)).outcome).toBe('allow');
    const elsewhere = await gateWith([evidenceOf(keyless)], { cache, root: other });
    const d = await decide(elsewhere);
    expect(d.outcome).toBe('deny');
    expect(d.evidence[0]).toMatchObject({ status: 'rejected' });
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('never reuses a result under other identity rules', async () => {
    const cache = createVerifyCache();
    const open = await gateWith([evidenceOf(keyless)], { cache });
    expect((await decide(open)).outcome).toBe('allow');
    const strict = await gateWith([evidenceOf(keyless)], {
      cache,
      doc: { identities: [{ san: 'someone-else@example.com', issuer: DEFAULT_IDENTITY.issuer }] },
    });
    const d = await decide(strict);
    expect(d.outcome).toBe('deny');
    expect(reportsOf(d)).toEqual([['rejected', 'IDENTITY_MISMATCH', false]]);
  });

  it('never reuses a result under other trusted keys', async () => {
    const cache = createVerifyCache();
    const m = await mintDSSEBundle(svc, {
      statement: statement(APP),
      version: '0.3',
      signer: 'key',
    });
    writeFileSync(path.join(dir, 'signer.pub'), m.publicKeyPem!);
    writeFileSync(
      path.join(dir, 'stranger.pub'),
      (await mintDSSEBundle(svc, { statement: statement(APP), version: '0.3', signer: 'key' }))
        .publicKeyPem!,
    );
    const bytes = bytesOf(m.bundle);
    const trusting = await gateWith([evidenceOf(bytes)], {
      cache,
      doc: { keys: [{ path: 'signer.pub' }] },
    });
    expect((await decide(trusting)).outcome).toBe('allow');
    const other = await gateWith([evidenceOf(bytes)], {
      cache,
      doc: { keys: [{ path: 'stranger.pub' }] },
    });
    const d = await decide(other);
    expect(d.outcome).toBe('deny');
    expect(d.evidence[0]).toMatchObject({ status: 'rejected', code: 'SIGNATURE_INVALID' });
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('never reuses a result once a key may or may no longer sign without a log', async () => {
    const cache = createVerifyCache();
    const m = await mintDSSEBundle(svc, {
      statement: statement(APP),
      version: '0.3',
      signer: 'key',
      tlog: false,
    });
    writeFileSync(path.join(dir, 'unlogged.pub'), m.publicKeyPem!);
    const bytes = bytesOf(m.bundle);
    const optional = await gateWith([evidenceOf(bytes)], {
      cache,
      doc: { keys: [{ path: 'unlogged.pub', transparency: 'optional' }] },
    });
    const allowed = await decide(optional);
    expect(allowed.outcome).toBe('allow');
    expect(allowed.evidence[0]).toMatchObject({ status: 'verified', timeSource: 'none' });
    const required = await gateWith([evidenceOf(bytes)], {
      cache,
      doc: { keys: [{ path: 'unlogged.pub' }] },
    });
    const d = await decide(required);
    expect(d.outcome).toBe('deny');
    expect(d.evidence[0]).toMatchObject({ status: 'rejected', code: 'TIMESTAMP_INVALID' });
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('keeps a failure briefly, with its reason, then verifies again', async () => {
    let now = 1_000_000;
    const cache = createVerifyCache({ failureTtlMs: 30_000, now: () => now });
    const broken = bytesOf(
      mutate(JSON.parse(keyless.toString('utf8')), ['dsseEnvelope', 'signatures', 0, 'sig'], (s) =>
        Buffer.from(String(s), 'base64').reverse().toString('base64'),
      ),
    );
    const gate = await gateWith([evidenceOf(broken)], { cache });
    const first = await decide(gate);
    const code = first.evidence[0]!.code;
    expect(code).toMatch(/SIGNATURE_INVALID|TLOG_BODY_MISMATCH/);
    expect(reportsOf(await decide(gate))).toEqual([['rejected', code, true]]);
    now += 30_001;
    expect(reportsOf(await decide(gate))).toEqual([['rejected', code, false]]);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2 });
  });

  it('sets evidence about other subjects aside before any cryptography', async () => {
    const cache = createVerifyCache();
    const m = await mintDSSEBundle(svc, {
      statement: statement(OTHER),
      version: '0.3',
      signer: 'keyless',
    });
    // the signature is broken too: were it verified, the rejection would say so
    const broken = mutate(m.bundle, ['dsseEnvelope', 'signatures', 0, 'sig'], () => 'AAAA');
    const gate = await gateWith([evidenceOf(bytesOf(broken))], { cache });
    const d = await decide(gate);
    expect(d.evidence).toMatchObject([
      { status: 'rejected', code: 'SUBJECT_MISMATCH', message: expect.stringContaining(OTHER) },
    ]);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0 });
  });

  it('verifies a piece of evidence once however many subjects it names', async () => {
    const cache = createVerifyCache();
    const both = statement(APP);
    both.subject.push({ name: 'other', digest: { sha256: OTHER } });
    const m = await mintDSSEBundle(svc, { statement: both, version: '0.3', signer: 'keyless' });
    const bytes = bytesOf(m.bundle);
    // the same bundle found by two sources, and a release set naming both of its subjects
    const gate = await gateWith([evidenceOf(bytes, 1), evidenceOf(bytes, 2)], { cache });
    const d = await decide(gate, 'dev', [APP, OTHER]);
    expect(d.outcome).toBe('allow');
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 1 });
  });

  it('an edited statement is other bytes: never the cached result of the original', async () => {
    const cache = createVerifyCache();
    const gate = await gateWith([evidenceOf(keyless)], { cache });
    expect((await decide(gate)).outcome).toBe('allow');
    const edited = mutate(JSON.parse(keyless.toString('utf8')), ['dsseEnvelope', 'payload'], (p) =>
      editBase64JSON(p as string, (st) =>
        mutate(st, ['predicateType'], () => 'https://slsa.dev/provenance/v1 '),
      ),
    );
    const tampered = await gateWith([evidenceOf(bytesOf(edited))], { cache });
    const d = await decide(tampered);
    expect(d.outcome).toBe('deny');
    expect(d.evidence[0]!.cached).toBeUndefined();
  });

  it('is bounded: the least recently used result goes first', () => {
    const cache = createVerifyCache({ maxEntries: 2 });
    let computed = 0;
    const get = (k: string) => cache.get(k, () => ++computed);
    get('a');
    get('b');
    get('a'); // a is now the most recent
    get('c'); // b goes
    expect(get('a').hit).toBe(true);
    expect(get('b').hit).toBe(false);
    expect(cache.stats().entries).toBe(2);
  });

  it('computes concurrent misses for the same evidence once', async () => {
    const cache = createVerifyCache();
    const gate = await gateWith([evidenceOf(keyless)], { cache });
    const decisions = await Promise.all(Array.from({ length: 8 }, () => decide(gate)));
    expect(decisions.map((d) => d.outcome)).toEqual(Array(8).fill('allow'));
    expect(cache.stats()).toMatchObject({ hits: 7, misses: 1, entries: 1 });
    expect(decisions.filter((d) => d.evidence[0]!.cached).length).toBe(7);
  });

  it('verifies the image of several containers of one pod once', async () => {
    const cache = createVerifyCache();
    const gate = await gateWith([evidenceOf(keyless)], { cache });
    const app = createServer({
      gate,
      config: normalise({ ledger: { path: path.join(dir, 'p.db') } }, dir, 'x'),
      tokens: {},
      ready: () => true,
    });
    const image = `registry.example/shop/app@sha256:${APP}`;
    const containers = ['web', 'sidecar', 'init'].map((name) => ({ name, image }));
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'uid-pod',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'shop',
        object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers } },
      },
    };
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/admission/dev', payload: review });
      expect(res.json().response.allowed).toBe(true);
      expect(cache.stats()).toMatchObject({ hits: 0, misses: 1 });
    } finally {
      await app.close();
    }
  });

  it('shows hits, misses, entries and the oldest age in /metrics', async () => {
    const cache = createVerifyCache();
    const gate = await gateWith([evidenceOf(keyless)], { cache });
    await decide(gate);
    await decide(gate);
    const app = createServer({
      gate,
      config: normalise({ ledger: { path: path.join(dir, 'm.db') } }, dir, 'x'),
      tokens: {},
      ready: () => true,
    });
    try {
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toMatch(/^verify_cache_hits_total 1$/m);
      expect(text).toMatch(/^verify_cache_misses_total 1$/m);
      expect(text).toMatch(/^verify_cache_entries 1$/m);
      expect(text).toMatch(/^verify_cache_oldest_age_seconds \d/m);
    } finally {
      await app.close();
    }
  });
});
