import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient, type HttpClient } from '../../src/collect/http.js';
import { createStoreSource, nextPage } from '../../src/collect/store.js';
import type { CollectRequest } from '../../src/collect/types.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';

const ARTIFACT = Buffer.from('store test artifact\n');
const SHA256 = createHash('sha256').update(ARTIFACT).digest('hex');
const SHA512 = createHash('sha512').update(ARTIFACT).digest('hex');
const REQ: CollectRequest = { subject: { algorithm: 'sha256', hex: SHA256 } };
const KEY = `sha256:${SHA256}`;
const TOKEN = 'ghp_not-a-real-token-0123456789';
const statement = (n: number) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app.tar.gz', digest: { sha256: SHA256, sha512: SHA512 } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: `https://example.com/build/${n}` } },
});

let svc: LocalSigstore;
let trust: Trust;
let bundles: Minted['bundle'][];
let store: StoreServer;
let http: HttpClient;

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  bundles = [];
  for (let n = 0; n < 5; n++) {
    const m = await mintDSSEBundle(svc, {
      version: '0.3',
      signer: 'keyless',
      statement: statement(n),
    });
    bundles.push(m.bundle);
  }
}, 120_000);
afterAll(() => svc.close());

beforeEach(async () => {
  store = await startStoreServer();
  http = createHttpClient({ backoffMs: 1, retries: 2, timeoutMs: 2_000 });
});
afterEach(async () => {
  await http.close();
  await store.close();
});

const source = (extra: Partial<Parameters<typeof createStoreSource>[0]> = {}) =>
  createStoreSource({ url: store.url, http, ...extra });

describe('finding attestations', () => {
  it('finds the bundles held for a digest', async () => {
    store.add(KEY, bundles[0], bundles[1]);
    store.add('sha256:' + 'f'.repeat(64), bundles[2]);
    const r = await source().collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.evidence.map((e) => e.kind)).toEqual(['bundle', 'bundle']);
    expect(r.evidence.map((e) => e.source)).toEqual([
      `store:${store.url}/attestations/${KEY}#0`,
      `store:${store.url}/attestations/${KEY}#1`,
    ]);
    expect(JSON.parse(r.evidence[0]!.bytes.toString())).toEqual(bundles[0]);
    expect(r.evidence[0]!.id).toBe(createHash('sha256').update(r.evidence[0]!.bytes).digest('hex'));
    expect(store.requests.map((q) => q.path)).toEqual([`/attestations/${KEY}`]);
  });

  it('gives bundles that verify with verifyAttestation and the local trusted root', async () => {
    store.add(KEY, ...bundles.slice(0, 3));
    const r = await source().collect(REQ);
    const types = r.evidence.map(
      (e) =>
        verifyAttestation(e.bytes, {
          trust,
          identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
          subject: { digest: REQ.subject },
        }).predicate,
    );
    expect(types).toEqual([0, 1, 2].map((n) => statement(n).predicate));
  });

  it('follows Link rel="next" over 3 pages', async () => {
    store.pageSize = 2;
    store.add(KEY, ...bundles);
    const r = await source().collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.evidence).toHaveLength(5);
    expect(store.requests.map((q) => q.path)).toEqual([
      `/attestations/${KEY}`,
      `/attestations/${KEY}?page=2`,
      `/attestations/${KEY}?page=3`,
    ]);
  });

  it('asks for sha512:<hex> for a sha512 subject', async () => {
    store.add(`sha512:${SHA512}`, bundles[0]);
    const r = await source().collect({ subject: { algorithm: 'sha512', hex: SHA512 } });
    expect(r.evidence).toHaveLength(1);
    expect(store.requests[0]!.path).toBe(`/attestations/sha512:${SHA512}`);
  });

  it('treats 404 as no attestations, not a failure', async () => {
    expect(await source().collect(REQ)).toEqual({ evidence: [], rejected: [], failures: [] });
  });

  it('rejects an entry with neither bundle nor bundle_url and counts a repeated bundle once', async () => {
    store.add(KEY, bundles[0], bundles[0]);
    store.addRaw(KEY, { bundle: null, bundle_url: null });
    const r = await source().collect(REQ);
    expect(r.evidence).toHaveLength(1);
    expect(r.rejected.map((x) => [x.source.split('#')[1], x.code])).toEqual([
      ['2', 'EVIDENCE_CONTENT_MISSING'],
    ]);
  });
});

describe('failures', () => {
  it('reports 500 forever as SOURCE_BAD_RESPONSE with no evidence, after the retries', async () => {
    store.add(KEY, bundles[0]);
    store.fault = { status: 500 };
    const r = await source().collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures).toEqual([
      {
        source: `store:${store.url}`,
        code: 'SOURCE_BAD_RESPONSE',
        message: `${store.url}/attestations/${KEY} answered http 500`,
      },
    ]);
    expect(store.requests).toHaveLength(3);
  });

  it('fails with SOURCE_LIMIT_EXCEEDED past maxEvidence or maxPages, never truncating', async () => {
    store.pageSize = 2;
    store.add(KEY, ...bundles);
    for (const limits of [{ maxEvidence: 4 }, { maxPages: 2 }]) {
      const r = await source(limits).collect(REQ);
      expect(r.evidence).toEqual([]);
      expect(r.failures.map((f) => f.code)).toEqual(['SOURCE_LIMIT_EXCEEDED']);
    }
  });

  it('refuses a next-page link to another origin, which would receive the token', async () => {
    store.pageSize = 1;
    store.add(KEY, bundles[0], bundles[1]);
    store.fault = 'offsite-link';
    const r = await source({ token: TOKEN }).collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures[0]).toMatchObject({ code: 'SOURCE_BAD_RESPONSE' });
    expect(r.failures[0]!.message).toContain('another origin (http://attacker.invalid)');
    expect(store.requests).toHaveLength(1);
  });

  it('reports a body that is not json, and a store that does not answer', async () => {
    store.add(KEY, bundles[0]);
    store.fault = 'malformed-json';
    expect((await source().collect(REQ)).failures.map((f) => f.code)).toEqual([
      'SOURCE_BAD_RESPONSE',
    ]);
    store.fault = 'hang';
    await http.close();
    http = createHttpClient({ timeoutMs: 100, retries: 0 });
    expect((await source().collect(REQ)).failures.map((f) => f.code)).toEqual(['SOURCE_TIMEOUT']);
  });
});

describe('the token', () => {
  it('is sent as a bearer token and never appears in a message', async () => {
    store.add(KEY, bundles[0]);
    store.requireToken = TOKEN;
    const ok = await source({ token: TOKEN }).collect(REQ);
    expect(ok.evidence).toHaveLength(1);
    expect(store.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(store.requests[0]!.headers.accept).toBe('application/vnd.github+json');

    const denied = await source({ token: 'wrong-' + TOKEN }).collect(REQ);
    expect(denied.failures[0]).toMatchObject({ code: 'SOURCE_BAD_RESPONSE' });
    expect(JSON.stringify(denied)).not.toContain(TOKEN);
  });

  it('is not sent when not configured', async () => {
    await source().collect(REQ);
    expect(store.requests[0]!.headers.authorization).toBeUndefined();
  });
});

describe('nextPage', () => {
  const page = 'https://api.example/repos/o/r/attestations/sha256:ab';
  it('reads rel="next" among other relations and resolves relative targets', () => {
    expect(nextPage('<?page=2>; rel="next", <?page=9>; rel="last"', page, page)).toBe(
      `${page}?page=2`,
    );
    expect(
      nextPage('<https://api.example/x?page=1>; rel="prev first"', page, page),
    ).toBeUndefined();
    expect(nextPage('<https://api.example/x?after=c,d>; rel=next', page, page)).toBe(
      'https://api.example/x?after=c,d',
    );
    expect(nextPage(undefined, page, page)).toBeUndefined();
  });
});
