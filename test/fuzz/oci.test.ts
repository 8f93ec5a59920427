import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HttpClient } from '../../src/collect/http.js';
import { COSIGN_ANNOTATIONS, DSSE_LAYER } from '../../src/collect/oci-cosign.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/collect/oci-manifest.js';
import { createOciSource } from '../../src/collect/oci.js';
import { GateError } from '../../src/errors.js';
import { loadTrustedRoot } from '../../src/verify/trust.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import { BUNDLE_CASES, jsonPaths, replaceAt, sameOrFewerClaims } from './cases.js';
import { mutation } from './mutate.js';

/**
 * OCI manifests, image indexes, referrers lists and cosign's legacy `.att` layers, served by an
 * in-memory registry (a fake HTTP client under the real registry client): every search ends with
 * evidence, rejections and failures, each rejection and failure coded, never an exception; the
 * evidence from referrers is byte for byte a blob the registry holds under its digest, and any
 * evidence that verifies says exactly what the genuine bundle says.
 */
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const digest = (b: Buffer | string) => `sha256:${sha256(b)}`;
const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const EMPTY = '{}';

const SEED = BUNDLE_CASES.find((c) => c.name === 'happy-path-intoto-in-dsse-v3')!;
const BUNDLE = SEED.bytes;
const SUBJECT = digest('the image manifest');
const HOST = 'registry.fuzz.example';
const NAME = 'shop/app';

const descriptor = (mediaType: string, bytes: Buffer | string, extra: object = {}) => ({
  mediaType,
  digest: digest(bytes),
  size: Buffer.byteLength(bytes),
  ...extra,
});

/** The referrer: an image manifest whose layer is the bundle (cosign's BUNDLE_SPEC). */
const MANIFEST = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  artifactType: BUNDLE_V03,
  config: descriptor('application/vnd.oci.empty.v1+json', EMPTY),
  layers: [descriptor(BUNDLE_V03, BUNDLE)],
  subject: { mediaType: OCI_MANIFEST, digest: SUBJECT, size: 1234 },
};

/** cosign's legacy `.att` layer for the same attestation: the envelope, the material annotated. */
const json = SEED.json as any;
const entry = json.verificationMaterial.tlogEntries[0];
const certificate = json.verificationMaterial.certificate.rawBytes as string;
const ENVELOPE = Buffer.from(JSON.stringify(json.dsseEnvelope));
const ANNOTATIONS = {
  [COSIGN_ANNOTATIONS.certificate]: `-----BEGIN CERTIFICATE-----\n${certificate.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`,
  [COSIGN_ANNOTATIONS.bundle]: JSON.stringify({
    SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
    Payload: {
      body: entry.canonicalizedBody,
      integratedTime: Number(entry.integratedTime),
      logIndex: Number(entry.logIndex),
      logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
    },
  }),
};
const ATT = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: descriptor('application/vnd.oci.image.config.v1+json', EMPTY),
  layers: [descriptor(DSSE_LAYER, ENVELOPE, { annotations: ANNOTATIONS })],
};

interface Served {
  status: number;
  headers: Record<string, string>;
  bytes: Buffer;
}

type Docs = { index: unknown; manifest: unknown; att: unknown; bundle: Buffer; envelope: Buffer };

/** The registry's content by path, the referrers list, the manifest and the blobs addressed by
 * the digests the documents name (so a changed document can also be served consistently). */
function registry(d: Docs, readdress: boolean): Map<string, Served> {
  const ok = (bytes: Buffer | string, type?: string): Served => ({
    status: 200,
    headers: type ? { 'content-type': type } : {},
    bytes: Buffer.from(bytes),
  });
  const text = (v: unknown) => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v) ?? ''));
  const v2 = `/v2/${NAME}`;
  const m = new Map<string, Served>();
  let manifest = text(d.manifest);
  const bundleAt = readdress ? digest(d.bundle) : digest(BUNDLE);
  if (readdress) {
    // the manifest names the changed bundle, the list the changed manifest
    manifest = text(replaceLayer(d.manifest, d.bundle));
  }
  const manifestAt = readdress ? digest(manifest) : digest(JSON.stringify(MANIFEST));
  const index = readdress ? pointIndexAt(d.index, manifest) : d.index;
  m.set(`${v2}/referrers/${SUBJECT}`, ok(text(index), OCI_INDEX));
  m.set(`${v2}/manifests/${manifestAt}`, ok(manifest, OCI_MANIFEST));
  m.set(`${v2}/blobs/${bundleAt}`, ok(d.bundle));
  m.set(`${v2}/manifests/${SUBJECT.replace(':', '-')}.att`, ok(text(d.att), OCI_MANIFEST));
  m.set(`${v2}/blobs/${readdress ? digest(d.envelope) : digest(ENVELOPE)}`, ok(d.envelope));
  m.set(`${v2}/blobs/${digest(EMPTY)}`, ok(EMPTY));
  return m;
}

function replaceLayer(manifest: unknown, bundle: Buffer): unknown {
  const layers = (manifest as { layers?: unknown })?.layers;
  if (!Array.isArray(layers) || typeof layers[0] !== 'object' || layers[0] === null)
    return manifest;
  const copy = structuredClone(manifest) as { layers: Record<string, unknown>[] };
  copy.layers[0] = { ...copy.layers[0], digest: digest(bundle), size: bundle.length };
  return copy;
}

function pointIndexAt(index: unknown, manifest: Buffer): unknown {
  const list = (index as { manifests?: unknown })?.manifests;
  if (!Array.isArray(list) || typeof list[0] !== 'object' || list[0] === null) return index;
  const copy = structuredClone(index) as { manifests: Record<string, unknown>[] };
  copy.manifests[0] = { ...copy.manifests[0], digest: digest(manifest), size: manifest.length };
  return copy;
}

/** An HTTP client answering from the map; token endpoints and everything else are unreachable. */
function fakeHttp(served: Map<string, Served>): HttpClient {
  const unreachable = async (): Promise<never> => {
    throw new GateError('SOURCE_UNREACHABLE', 'the fuzz registry has no token endpoint');
  };
  return {
    getJSON: unreachable,
    postJSON: unreachable,
    requestJSON: unreachable,
    async getBytes(url) {
      const u = new URL(url);
      const s = u.host === HOST ? served.get(u.pathname) : undefined;
      return s ?? { status: 404, headers: {}, bytes: Buffer.from('{"errors":[]}') };
    },
    close: async () => {},
  };
}

const trust = loadTrustedRoot();
const IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const verify = (bytes: Buffer) =>
  verifyBundle(bytes, {
    trust,
    identities: [{ san: IDENTITY, issuer: 'https://token.actions.githubusercontent.com' }],
  });
const ORIGINAL = verify(BUNDLE);

async function search(served: Map<string, Served>, subject = SUBJECT, platforms = false) {
  const source = createOciSource({
    repositories: [`${HOST}/${NAME}`],
    http: fakeHttp(served),
    retries: 0,
    platforms,
    keychain: { resolve: async () => undefined, searched: 'nothing' },
  });
  const r = await source.collect({ subject: { algorithm: 'sha256', hex: subject.slice(7) } });
  for (const f of [...r.failures, ...r.rejected]) {
    expect(f.code).toMatch(/^[A-Z0-9_]+$/);
    expect(f.message).not.toMatch(/\n/);
  }
  for (const e of r.evidence) {
    expect(e.id).toBe(sha256(e.bytes));
    if (e.source.includes('#referrers')) {
      // content addressed: a blob the registry holds under the digest of exactly these bytes
      expect(served.get(`/v2/${NAME}/blobs/${digest(e.bytes)}`)?.bytes.equals(e.bytes)).toBe(true);
    }
    if (e.kind !== 'bundle') continue;
    const v = coded(() => verify(e.bytes));
    if (v.ok) {
      expect(v.value.signer).toEqual(ORIGINAL.signer);
      expect(v.value.payload?.equals(ORIGINAL.payload!)).toBe(true);
      const entries = (e: { logEntries: unknown }) => e.logEntries as Record<string, unknown>[];
      expect(sameOrFewerClaims(entries(v.value), entries(ORIGINAL))).toBe(true);
    }
  }
  return r;
}

const SEED_DOCS: Docs = {
  index: {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [descriptor(OCI_MANIFEST, JSON.stringify(MANIFEST), { artifactType: BUNDLE_V03 })],
  },
  manifest: MANIFEST,
  att: ATT,
  bundle: BUNDLE,
  envelope: ENVELOPE,
};

/** One change to one document: a field (index, manifests), bytes (blobs), or the whole. */
const docChange = fc.oneof(
  fc.constantFrom('index' as const, 'manifest' as const, 'att' as const).chain((doc) =>
    fc.record({
      doc: fc.constant(doc),
      path: fc.constantFrom(...jsonPaths(SEED_DOCS[doc])),
      m: mutation,
    }),
  ),
  fc.record({
    doc: fc.constantFrom('bundle' as const, 'envelope' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    doc: fc.constantFrom('index' as const, 'manifest' as const, 'att' as const, 'bundle' as const),
    whole: fc.oneof(
      fc.jsonValue(),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    ),
  }),
);

function changedDocs(c: any): Docs {
  const d: Docs = { ...SEED_DOCS };
  if ('whole' in c) {
    (d as any)[c.doc] =
      Buffer.isBuffer(c.whole) || c.doc === 'bundle'
        ? Buffer.from(Buffer.isBuffer(c.whole) ? c.whole : (JSON.stringify(c.whole) ?? ''))
        : c.whole;
  } else if ('xor' in c) {
    const b = Buffer.from(d[c.doc as 'bundle' | 'envelope']);
    b[c.at % b.length] = b[c.at % b.length]! ^ c.xor;
    (d as any)[c.doc] = b;
  } else {
    (d as any)[c.doc] = replaceAt(SEED_DOCS[c.doc as 'index'], c.path, c.m);
  }
  return d;
}

/** A changed HTTP answer on one path: any status, headers a client acts on, any body. */
const httpChange = fc.record({
  path: fc.constantFrom('referrers', 'manifest', 'blob', 'att'),
  status: fc.constantFrom(
    200,
    201,
    204,
    206,
    301,
    302,
    307,
    308,
    400,
    401,
    403,
    404,
    429,
    500,
    503,
  ),
  headers: fc.record(
    {
      location: fc.oneof(
        fc.string(),
        fc.constantFrom(
          '/v2/shop/app/blobs/x',
          'http://registry.fuzz.example/',
          '//evil.example/x',
          `https://${HOST}/v2/${NAME}/referrers/${SUBJECT}`,
        ),
      ),
      'www-authenticate': fc.oneof(
        fc.string(),
        fc.constantFrom(
          'Bearer realm="https://auth.example/token",service="r"',
          'Basic realm="r"',
          'Negotiate',
        ),
      ),
      'content-type': fc.constantFrom(OCI_INDEX, OCI_MANIFEST, 'text/html', ''),
      'docker-content-digest': fc.constantFrom(SUBJECT, 'sha256:', 'md5:x'),
      link: fc.oneof(
        fc.string(),
        fc.constantFrom(
          `</v2/${NAME}/referrers/${SUBJECT}?n=2>; rel="next"`,
          '<https://evil.example/v2/x>; rel=next',
        ),
      ),
    },
    { requiredKeys: [] },
  ),
  body: fc.oneof(
    fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  ),
});

const N = runs();

describe('oci registries', () => {
  it('the seed registry yields the bundle from the referrers api and the rebuilt .att layer', async () => {
    const r = await search(registry(SEED_DOCS, false));
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.evidence.map((e) => e.source.replace(/^.*#/, '').replace(/:.*/, ''))).toEqual([
      'referrers-api',
      'cosign-att',
    ]);
    for (const e of r.evidence) expect(verify(e.bytes).signer).toEqual(ORIGINAL.signer);
  });

  it(
    'any document changed, served at its old digest or re-addressed: coded, content addressed, nothing else verifies',
    async () => {
      await checkProperty(
        'oci.document-mutation',
        fc.asyncProperty(docChange, fc.boolean(), async (c, readdress) => {
          await search(registry(changedDocs(c), readdress));
        }),
        { numRuns: N * 2, timeout: 10_000 },
      );
    },
    timeoutFor(N * 2, 20),
  );

  it(
    'any status, redirect, challenge, link or body on any path: coded, never an exception',
    async () => {
      await checkProperty(
        'oci.http-answers',
        fc.asyncProperty(fc.array(httpChange, { minLength: 1, maxLength: 3 }), async (changes) => {
          const served = registry(SEED_DOCS, false);
          const v2 = `/v2/${NAME}`;
          const paths: Record<string, string> = {
            referrers: `${v2}/referrers/${SUBJECT}`,
            manifest: `${v2}/manifests/${digest(JSON.stringify(MANIFEST))}`,
            blob: `${v2}/blobs/${digest(BUNDLE)}`,
            att: `${v2}/manifests/${SUBJECT.replace(':', '-')}.att`,
          };
          for (const c of changes)
            served.set(paths[c.path]!, { status: c.status, headers: c.headers, bytes: c.body });
          await search(served);
        }),
        { numRuns: N, timeout: 10_000 },
      );
    },
    timeoutFor(N, 20),
  );
  it(
    'an image index changed anywhere: its platforms searched or a coded failure, nothing found',
    async () => {
      const platform = (os: string, architecture: string, extra: object = {}) =>
        descriptor(OCI_MANIFEST, `${os}/${architecture} manifest`, {
          platform: { os, architecture },
          ...extra,
        });
      const INDEX = {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          platform('linux', 'amd64'),
          platform('linux', 'arm64', { annotations: { 'org.opencontainers.image.ref.name': 'x' } }),
          platform('unknown', 'unknown', {
            annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
          }),
        ],
      };
      await checkProperty(
        'oci.image-index',
        fc.asyncProperty(
          fc.oneof(
            fc
              .tuple(fc.constantFrom(...jsonPaths(INDEX)), mutation)
              .map(([p, m]) => replaceAt(INDEX, p, m)),
            fc.jsonValue(),
          ),
          async (index) => {
            // the subject is the index's digest: served consistently, as a registry would
            const bytes = Buffer.from(JSON.stringify(index) ?? '');
            const subject = digest(bytes);
            const served = new Map<string, Served>([
              [
                `/v2/${NAME}/manifests/${subject}`,
                { status: 200, headers: { 'content-type': OCI_INDEX }, bytes },
              ],
            ]);
            const r = await search(served, subject, true);
            expect(r.evidence).toEqual([]);
            const children = new Set(r.searched.map((l) => l.subject));
            children.delete(subject);
            // every platform searched was listed in the index, as a sha256 or sha512 digest
            for (const c of children) {
              expect(c).toMatch(/^sha(256:[0-9a-f]{64}|512:[0-9a-f]{128})$/);
              expect(bytes.toString()).toContain(c);
            }
          },
        ),
        {
          numRuns: N,
          timeout: 10_000,
          // regression: an index without a manifests list threw out of the search (oci.ts)
          examples: [[{}], [{ schemaVersion: 2, mediaType: OCI_INDEX, manifests: 'x' }]],
        },
      );
    },
    timeoutFor(N, 20),
  );
});
