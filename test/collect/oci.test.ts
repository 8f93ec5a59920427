import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/collect/http.js';
import { createOciSource, type OciSourceOptions } from '../../src/collect/oci.js';
import { parseRepository, plainHttpAllowed } from '../../src/collect/oci-ref.js';
import type { ArtifactDigest } from '../../src/subject.js';
import {
  BUNDLE_V03,
  pushBundleArtifact,
  pushImage,
  pushReferrersTag,
  sha256,
  type Descriptor,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim, type RegistryShim, type ShimOptions } from '../support/registry-shim.js';

// Collecting is not verifying: the bundles here are distinct JSON documents the source must hand
// over byte for byte; the verify stage's own tests check real signed bundles.
const bundle = (n: number) =>
  Buffer.from(JSON.stringify({ mediaType: BUNDLE_V03, n, at: Math.random() }));
const subjectOf = (d: Descriptor): ArtifactDigest => ({
  algorithm: 'sha256',
  hex: d.digest.slice(7),
});

let registry: RegistryServer;
const http = createHttpClient({ retries: 0 });
const shims: RegistryShim[] = [];

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await Promise.all(shims.map((s) => s.close()));
  await registry?.close();
  await http.close();
});

async function shim(opts: ShimOptions = {}): Promise<RegistryShim> {
  const s = await startShim(registry.url, opts);
  shims.push(s);
  return s;
}

async function collect(
  host: string,
  repo: string,
  subject: Descriptor,
  o: Partial<OciSourceOptions> = {},
) {
  const source = createOciSource({ repositories: [`${host}/${repo}`], http, retries: 0, ...o });
  try {
    return await source.collect({ subject: subjectOf(subject) });
  } finally {
    await source.close();
  }
}

describe('when the registry has no referrers API (crane registry serve)', () => {
  it('finds sigstore bundles through the referrers tag schema', async () => {
    const image = await pushImage(registry.url, 'tagged/app');
    const b = bundle(1);
    const ref = await pushBundleArtifact(registry.url, 'tagged/app', image, b);
    await pushReferrersTag(registry.url, 'tagged/app', image.digest, [ref]);
    const r = await collect(registry.host, 'tagged/app', image);
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.evidence).toHaveLength(1);
    expect(r.evidence[0]!.bytes.equals(b)).toBe(true);
    expect(r.evidence[0]!.kind).toBe('bundle');
    expect(r.evidence[0]!.source).toBe(
      `oci:${registry.host}/tagged/app@${image.digest}#referrers-tag:${ref.digest}`,
    );
    expect(r.searched.map((l) => [l.layout, l.outcome, l.bundles])).toEqual([
      ['referrers-api', 'absent', 0],
      ['referrers-tag', 'listed', 1],
      ['cosign-att', 'absent', 0],
      ['cosign-sig', 'absent', 0],
    ]);
  });

  it('reports nothing found, not a failure, for an image without attestations', async () => {
    const image = await pushImage(registry.url, 'bare/app');
    const r = await collect(registry.host, 'bare/app', image);
    expect(r).toMatchObject({ evidence: [], rejected: [], failures: [] });
    expect(r.searched.map((l) => l.outcome)).toEqual(['absent', 'absent', 'absent', 'absent']);
  });

  it('rejects a referrer whose listed artifactType lies', async () => {
    const image = await pushImage(registry.url, 'liar/app');
    const other = await pushImage(registry.url, 'liar/app', 'other');
    await pushReferrersTag(registry.url, 'liar/app', image.digest, [
      { ...other, artifactType: BUNDLE_V03 },
    ]);
    const r = await collect(registry.host, 'liar/app', image);
    expect(r.evidence).toEqual([]);
    expect(r.rejected.map((x) => x.code)).toEqual(['OCI_REFERRER_MISMATCH']);
  });

  it('rejects a bundle artifact that refers to another subject', async () => {
    const image = await pushImage(registry.url, 'moved/app');
    const other = await pushImage(registry.url, 'moved/app', 'other');
    const ref = await pushBundleArtifact(registry.url, 'moved/app', other, bundle(2));
    await pushReferrersTag(registry.url, 'moved/app', image.digest, [ref]);
    const r = await collect(registry.host, 'moved/app', image);
    expect(r.evidence).toEqual([]);
    expect(r.rejected).toMatchObject([
      { code: 'OCI_REFERRER_MISMATCH', message: expect.stringContaining(other.digest) },
    ]);
  });

  it('rejects a listed descriptor without a digest the gate can check', async () => {
    const extra = new Map<string, Descriptor[]>();
    const front = await shim({ extra });
    const image = await pushImage(registry.url, 'md5/app');
    extra.set(image.digest, [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: 'md5:abc',
        size: 2,
        artifactType: BUNDLE_V03,
      },
    ]);
    const r = await collect(front.host, 'md5/app', image);
    expect(r.evidence).toEqual([]);
    expect(r.failures).toEqual([]);
    expect(r.rejected.map((x) => x.code)).toEqual(['OCI_MANIFEST_INVALID']);
  });

  it('rejects a blob that does not match its digest', async () => {
    const front = await shim({ tamperBlobs: true });
    const image = await pushImage(registry.url, 'tamper/app');
    const ref = await pushBundleArtifact(registry.url, 'tamper/app', image, bundle(4));
    await pushReferrersTag(registry.url, 'tamper/app', image.digest, [ref]);
    const r = await collect(front.host, 'tamper/app', image);
    expect(r.evidence).toEqual([]);
    expect(r.rejected.map((x) => x.code)).toEqual(['OCI_DIGEST_MISMATCH']);
  });

  it('is a could-not-decide failure, never nothing found, when the registry cannot be read', async () => {
    const front = await shim();
    const host = front.host;
    await front.close();
    shims.splice(shims.indexOf(front), 1);
    const image = await pushImage(registry.url, 'gone/app');
    const r = await collect(host, 'gone/app', image);
    expect(r.evidence).toEqual([]);
    expect(r.failures.map((f) => f.code)).toEqual(Array(4).fill('SOURCE_UNREACHABLE'));
    expect(r.searched.map((l) => l.outcome)).toEqual(['failed', 'failed', 'failed', 'failed']);
  });
});

describe('when the registry serves the referrers API (shim over the real registry)', () => {
  it('reads every page and fetches each referrer once', async () => {
    const front = await shim({ pageSize: 1 });
    const image = await pushImage(front.url, 'paged/app');
    const bundles = [bundle(10), bundle(11), bundle(12)];
    for (const b of bundles) await pushBundleArtifact(front.url, 'paged/app', image, b);
    const r = await collect(front.host, 'paged/app', image);
    expect(r.failures).toEqual([]);
    expect(r.evidence.map((e) => e.id).sort()).toEqual(
      bundles.map((b) => sha256(b).slice(7)).sort(),
    );
    expect(r.searched[0]).toMatchObject({
      layout: 'referrers-api',
      outcome: 'listed',
      referrers: 3,
      bundles: 3,
    });
    expect(front.seen.filter((l) => l.includes('/referrers/'))).toHaveLength(3);
    expect(
      front.seen.some((l) => l.includes(`artifactType=${encodeURIComponent(BUNDLE_V03)}`)),
    ).toBe(true);
  });

  it('checks what each referrer holds when the registry ignores the artifactType filter', async () => {
    const front = await shim({ ignoreFilter: true });
    const image = await pushImage(front.url, 'nofilter/app');
    const other = await pushImage(front.url, 'nofilter/app', 'other');
    // an unrelated referrer (an SBOM-like artifact) beside the bundle
    const sbom = {
      ...(await pushBundleArtifact(front.url, 'nofilter/app', image, Buffer.from('{}'), {
        artifactType: 'application/spdx+json',
        layerMediaType: 'application/spdx+json',
      })),
    };
    const b = bundle(20);
    await pushBundleArtifact(front.url, 'nofilter/app', image, b);
    void other;
    void sbom;
    const r = await collect(front.host, 'nofilter/app', image);
    expect(r.rejected).toEqual([]);
    expect(r.evidence.map((e) => e.bytes.toString())).toEqual([b.toString()]);
    expect(r.searched[0]).toMatchObject({ referrers: 2, bundles: 1 });
  });

  it('counts a referrer listed by both the API and the fallback tag once', async () => {
    const front = await shim();
    const image = await pushImage(front.url, 'both/app');
    const ref = await pushBundleArtifact(front.url, 'both/app', image, bundle(30));
    await pushReferrersTag(front.url, 'both/app', image.digest, [ref]);
    const r = await collect(front.host, 'both/app', image);
    expect(r.evidence).toHaveLength(1);
    expect(r.searched.map((l) => [l.layout, l.referrers, l.bundles])).toEqual([
      ['referrers-api', 1, 1],
      ['referrers-tag', 1, 0],
      ['cosign-att', 0, 0],
      ['cosign-sig', 0, 0],
    ]);
  });

  it('fails with a limit when a subject has more referrers than allowed', async () => {
    const front = await shim({ pageSize: 2 });
    const image = await pushImage(front.url, 'many/app');
    for (let i = 0; i < 4; i++)
      await pushBundleArtifact(front.url, 'many/app', image, bundle(40 + i));
    const r = await collect(front.host, 'many/app', image, { maxReferrers: 3 });
    expect(r.evidence).toEqual([]);
    expect(r.failures.map((f) => f.code)).toEqual(['SOURCE_LIMIT_EXCEEDED']);
  });
});

describe('when the registry asks for a bearer token', () => {
  it('gets an anonymous token from the realm and reads with it', async () => {
    const front = await shim({ auth: true });
    const image = await pushImage(registry.url, 'private/app');
    const b = bundle(50);
    const ref = await pushBundleArtifact(registry.url, 'private/app', image, b);
    await pushReferrersTag(registry.url, 'private/app', image.digest, [ref]);
    const r = await collect(front.host, 'private/app', image);
    expect(r.failures).toEqual([]);
    expect(r.evidence.map((e) => e.bytes.toString())).toEqual([b.toString()]);
    expect(front.seen.filter((l) => l.startsWith('GET /token'))).toHaveLength(1);
  });
});

describe('transport', () => {
  it('uses plain http only for loopback and configured-insecure registries', () => {
    expect(parseRepository('127.0.0.1:5000/app').base).toBe('http://127.0.0.1:5000');
    expect(parseRepository('localhost:5000/app').base).toBe('http://localhost:5000');
    expect(parseRepository('ghcr.io/acme/app').base).toBe('https://ghcr.io');
    expect(parseRepository('reg.lan:5000/app', ['reg.lan:5000']).base).toBe('http://reg.lan:5000');
    expect(plainHttpAllowed('128.0.0.1', [])).toBe(false);
  });

  it('refuses a repository without a registry host', () => {
    expect(() => parseRepository('library/alpine')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => parseRepository('ghcr.io/Acme/App')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
