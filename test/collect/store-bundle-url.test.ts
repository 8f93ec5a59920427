import { createHash } from 'node:crypto';
import { compress } from 'snappyjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient, type HttpClient } from '../../src/collect/http.js';
import { defaultSources } from '../../src/collect/sources.js';
import { createStoreSource } from '../../src/collect/store.js';
import type { CollectRequest } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { startBlobServer, type BlobServer } from '../support/blob-server.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';

const ARTIFACT = Buffer.from('bundle_url test artifact\n');
const SHA256 = createHash('sha256').update(ARTIFACT).digest('hex');
const REQ: CollectRequest = { subject: { algorithm: 'sha256', hex: SHA256 } };
const KEY = `sha256:${SHA256}`;
const TOKEN = 'ghp_not-a-real-token-bundle-url-0123';
const TYPES = ['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document/v2.3'];
const statement = (n: number) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app.tar.gz', digest: { sha256: SHA256 } }],
  predicateType: TYPES[n % 2]!,
  predicate: { n },
});

let svc: LocalSigstore;
let trust: Trust;
let bundles: Minted['bundle'][];
let store: StoreServer;
let blobs: BlobServer;
let http: HttpClient;

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  bundles = [];
  for (let n = 0; n < 4; n++) {
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
  blobs = await startBlobServer();
  // The API answers only with the token: proof that it was configured and sent there.
  store.requireToken = TOKEN;
  http = createHttpClient({ backoffMs: 1, retries: 1, timeoutMs: 2_000 });
});
afterEach(async () => {
  // The blob host is a second origin: it must never have seen an Authorization header.
  expect(blobs.authorizationSeen).toEqual([]);
  for (const r of blobs.requests) expect(r.headers.authorization).toBeUndefined();
  await http.close();
  await store.close();
  await blobs.close();
});

const source = (extra: Partial<Parameters<typeof createStoreSource>[0]> = {}) =>
  createStoreSource({ url: store.url, http, token: TOKEN, ...extra });
const json = (b: unknown) => Buffer.from(JSON.stringify(b));
const block = (b: Buffer) => Buffer.from(compress(new Uint8Array(b)));
/** As framing_format.txt lays it out: stream identifier, one uncompressed chunk (type 1). */
function framedRaw(b: Buffer, crc: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt8(0x01, 0);
  head.writeUIntLE(b.length + 4, 1, 3);
  head.writeUInt32LE(crc, 4);
  return Buffer.concat([Buffer.from('ff060000734e61507059', 'hex'), head, b]);
}
/** Serves `body` on the blob host and lists an entry `{bundle: null, bundle_url}` pointing at it. */
function held(path: string, body: Buffer, extra: object = {}) {
  blobs.put(path, body);
  store.addRaw(KEY, { bundle: null, bundle_url: `${blobs.url}${path}`, ...extra });
}
const apiSawToken = () =>
  store.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`) &&
  store.requests.length > 0;

describe('when an entry holds bundle: null and a bundle_url', () => {
  it('fetches snappy block, plain json, and keeps inline bundles; all verify', async () => {
    held('/b/0', block(json(bundles[0])));
    held('/b/1', json(bundles[1]));
    store.add(KEY, bundles[2]);
    const r = await source().collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.evidence.map((e) => e.source)).toEqual(
      [0, 1, 2].map((i) => `store:${store.url}/attestations/${KEY}#${i}`),
    );
    for (const e of r.evidence) {
      expect(e.kind).toBe('bundle');
      expect(e.id).toBe(createHash('sha256').update(e.bytes).digest('hex'));
      const v = verifyAttestation(e.bytes, {
        trust,
        identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
        subject: { digest: REQ.subject },
      });
      expect(v.predicate).toHaveProperty('n');
    }
    expect(blobs.requests.map((q) => q.path).sort()).toEqual(['/b/0', '/b/1']);
    expect(apiSawToken()).toBe(true);
  });

  it('fetches the snappy framed format (a hand-checked checksum)', async () => {
    const body = json({ mediaType: 'x' });
    // masked CRC-32C of '{"mediaType":"x"}', worked out with a bitwise CRC outside this code
    held('/f', framedRaw(body, 0x404ac398));
    const r = await source().collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.evidence.map((e) => e.bytes.toString())).toEqual([body.toString()]);
  });

  it('follows a redirect, and sends no token even when it leads back to the API origin', async () => {
    held('/hop', Buffer.alloc(0));
    blobs.redirect('/hop', `${store.url}/blob-on-api-origin`);
    const r = await source().collect(REQ);
    const onApi = store.requests.find((q) => q.path === '/blob-on-api-origin');
    expect(onApi).toBeDefined();
    expect(onApi!.headers.authorization).toBeUndefined();
    expect(r.failures.map((f) => f.code)).toEqual(['SOURCE_BAD_RESPONSE']);
  });
});

describe('when the bundle_url cannot be used', () => {
  it('rejects a decompression bomb from its declared length, with SOURCE_TOO_LARGE', async () => {
    held('/bomb', Buffer.from('ffffffff0f0041', 'hex'));
    held('/big', block(Buffer.alloc(4096, 'x')));
    store.add(KEY, bundles[0]);
    const r = await source({ maxBundleBytes: 2048 }).collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.evidence).toHaveLength(1);
    expect(r.rejected.map((x) => [x.source.split('#')[1], x.code])).toEqual([
      ['0', 'SOURCE_TOO_LARGE'],
      ['1', 'SOURCE_TOO_LARGE'],
    ]);
    expect(r.rejected[0]!.message).toContain('4294967295 bytes uncompressed');
  });

  it('could not decide when the blob host sends more than the cap', async () => {
    held('/huge', Buffer.alloc(5000, 'x'));
    const r = await source({ maxBundleBytes: 2048 }).collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures.map((f) => f.code)).toEqual(['SOURCE_TOO_LARGE']);
  });

  it('rejects truncated, corrupt and non-bundle bodies with EVIDENCE_MALFORMED', async () => {
    const good = block(json(bundles[0]));
    held('/truncated', good.subarray(0, good.length - 40));
    held('/not-snappy', Buffer.from('<html>blocked</html>'));
    held('/array', json([bundles[0]]));
    held('/bad-crc', framedRaw(json({ mediaType: 'x' }), 0x404ac399));
    const r = await source().collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.evidence).toEqual([]);
    expect(r.rejected.map((x) => x.code)).toEqual(Array(4).fill('EVIDENCE_MALFORMED'));
  });

  it('refuses a bundle_url that is not http(s), fetching nothing', async () => {
    store.addRaw(KEY, { bundle: null, bundle_url: 'file:///etc/passwd' });
    store.addRaw(KEY, { bundle: null, bundle_url: 'ftp://127.0.0.1/b' });
    const r = await source().collect(REQ);
    expect(r.rejected.map((x) => [x.code, x.message])).toEqual([
      [
        'EVIDENCE_MALFORMED',
        `attestation 0 from ${store.url}/attestations/${KEY} has a bundle_url that is not http(s)`,
      ],
      [
        'EVIDENCE_MALFORMED',
        `attestation 1 from ${store.url}/attestations/${KEY} has a bundle_url that is not http(s)`,
      ],
    ]);
    expect(blobs.requests).toEqual([]);
  });

  it('rejects a bundle that is neither an object nor null', async () => {
    store.addRaw(KEY, { bundle: 'e30=', bundle_url: `${blobs.url}/never` });
    const r = await source().collect(REQ);
    expect(r.rejected.map((x) => x.code)).toEqual(['EVIDENCE_MALFORMED']);
    expect(blobs.requests).toEqual([]);
  });

  it('could not decide when the blob host redirects off http(s)', async () => {
    held('/off', Buffer.alloc(0));
    blobs.redirect('/off', 'file:///etc/passwd');
    const r = await source().collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures.map((f) => [f.code, f.message])).toEqual([
      [
        'SOURCE_BAD_RESPONSE',
        `bundle_url of attestation 0 from ${store.url}/attestations/${KEY}: ${blobs.url}/off redirects off http(s)`,
      ],
    ]);
  });

  it('could not decide when the blob host answers 404: a coded failure, no evidence', async () => {
    store.add(KEY, bundles[0]);
    // A blob URL carries its own signature in the query (as a SAS URL does): never in a message.
    store.addRaw(KEY, { bundle: null, bundle_url: `${blobs.url}/gone?sig=SAS-SECRET` });
    const r = await source().collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures).toEqual([
      {
        source: `store:${store.url}`,
        code: 'SOURCE_BAD_RESPONSE',
        message: `bundle_url of attestation 1 from ${store.url}/attestations/${KEY}: ${blobs.url}/gone?… answered http 404`,
      },
    ]);
    expect(JSON.stringify(r)).not.toContain(TOKEN);
    expect(JSON.stringify(r)).not.toContain('SAS-SECRET');
  });
});

describe('routing and filtering', () => {
  it.each(['/repos/acme/app', '/orgs/acme', '/users/octo'])(
    'asks the %s scope for its own attestations',
    async (scope) => {
      store.add(KEY, bundles[0]);
      store.scope = scope;
      held(`/s${scope}`, block(json(bundles[1])));
      const r = await source({ url: `${store.url}${scope}` }).collect(REQ);
      expect(r.failures).toEqual([]);
      expect(r.evidence).toHaveLength(1);
      expect(JSON.parse(r.evidence[0]!.bytes.toString())).toEqual(bundles[1]);
      expect(store.requests.map((q) => q.path)).toEqual([`${scope}/attestations/${KEY}`]);
    },
  );

  it('sends one predicate_type query per configured type and merges them', async () => {
    store.pageSize = 1;
    store.add(KEY, bundles[0], bundles[1], bundles[2]);
    held('/p3', block(json(bundles[3])), { predicate_type: TYPES[1] });
    const r = await source({ predicateTypes: TYPES }).collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.evidence.map((e) => JSON.parse(e.bytes.toString()))).toEqual([
      bundles[0],
      bundles[2],
      bundles[1],
      bundles[3],
    ]);
    const q = (t: string, page = '') =>
      `/attestations/${KEY}?predicate_type=${encodeURIComponent(t)}${page}`;
    expect(store.requests.map((x) => x.path)).toEqual([
      q(TYPES[0]!),
      q(TYPES[0]!, '&page=2'),
      q(TYPES[1]!),
      q(TYPES[1]!, '&page=2'),
    ]);
    expect(r.evidence[2]!.source).toBe(`store:${store.url}/attestations/${KEY}[${TYPES[1]}]#0`);
    const only = await source({ predicateTypes: [TYPES[1]!] }).collect(REQ);
    expect(only.evidence).toHaveLength(2);
  });
});

describe('from the configuration', () => {
  const config = (store: object) =>
    normalise({ sources: { store } }, '/tmp', 'x'.repeat(64), 'gate.yaml', { GH_TOKEN: TOKEN });

  it('wires tokenEnv and predicateTypes into the store source', async () => {
    store.add(KEY, bundles[0], bundles[1]);
    const c = config({
      url: `${store.url}/orgs/acme`,
      tokenEnv: 'GH_TOKEN',
      predicateTypes: [TYPES[1]],
    });
    store.scope = '/orgs/acme';
    store.add(KEY, bundles[1], bundles[2]);
    const [src] = await defaultSources(c.sources, [], http);
    const r = await src!.collect(REQ);
    expect(r.failures).toEqual([]);
    expect(r.evidence.map((e) => JSON.parse(e.bytes.toString()))).toEqual([bundles[1]]);
    expect(store.requests.map((q) => q.path)).toEqual([
      `/orgs/acme/attestations/${KEY}?predicate_type=${encodeURIComponent(TYPES[1]!)}`,
    ]);
    expect(apiSawToken()).toBe(true);
  });

  it('refuses an empty or malformed predicateTypes with CONFIG_INVALID', () => {
    for (const predicateTypes of [[], [''], 'provenance']) {
      expect(() => config({ url: store.url, predicateTypes })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });
});
