import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHttpClient } from '../../src/collect/http.js';
import { createOciSource } from '../../src/collect/oci.js';
import {
  BUNDLE_V03,
  OCI_INDEX,
  pushImage,
  pushManifest,
  pushReferrersTag,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim } from '../support/registry-shim.js';

/**
 * Loops a registry can build: referrers pages that link back to themselves, and a referrer that
 * is an index of other manifests. Each ends coded, in bounded requests, never as evidence.
 */
let registry: RegistryServer;
const http = createHttpClient({ retries: 0 });

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.close();
  await http.close();
});

const subjectOf = (digest: string) => ({ algorithm: 'sha256' as const, hex: digest.slice(7) });

it('stops at referrers pages that loop, and could not look (never nothing found)', async () => {
  const front = await startShim(registry.url, { loopPages: true });
  try {
    const image = await pushImage(registry.url, 'loop/app');
    const source = createOciSource({ repositories: [`${front.host}/loop/app`], http, retries: 0 });
    const r = await source.collect({ subject: subjectOf(image.digest) });
    expect(r.evidence).toEqual([]);
    expect(r.failures).toMatchObject([
      { code: 'SOURCE_BAD_RESPONSE', message: expect.stringContaining('pages loop') },
    ]);
    // one page asked, then the loop seen: bounded
    expect(front.seen.filter((l) => l.includes('/referrers/'))).toHaveLength(1);
  } finally {
    await front.close();
  }
});

it('waits as a throttling registry asks (429, Retry-After) and then reads', async () => {
  const front = await startShim(registry.url, { throttle: 2 });
  try {
    const image = await pushImage(registry.url, 'slow/app');
    const source = createOciSource({ repositories: [`${front.host}/slow/app`], http, retries: 2 });
    const started = Date.now();
    const r = await source.collect({ subject: subjectOf(image.digest) });
    expect(r.failures).toEqual([]);
    // the shim has the referrers API (an empty list); no fallback or legacy tags
    expect(r.searched.map((l) => l.outcome)).toEqual(['listed', 'absent', 'absent', 'absent']);
    expect(front.seen.filter((l) => l.includes('/referrers/'))).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  } finally {
    await front.close();
  }
});

it('never follows a referrer that is itself an index (no manifest loop can form)', async () => {
  const image = await pushImage(registry.url, 'nested/app');
  // an index listing the image it refers to, listed as a sigstore bundle
  const inner = await pushManifest(registry.url, 'nested/app', {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [image],
    subject: image,
  });
  await pushReferrersTag(registry.url, 'nested/app', image.digest, [
    { ...inner, artifactType: BUNDLE_V03 },
  ]);
  const source = createOciSource({
    repositories: [`${registry.host}/nested/app`],
    http,
    retries: 0,
  });
  const r = await source.collect({ subject: subjectOf(image.digest) });
  expect(r.evidence).toEqual([]);
  expect(r.failures).toEqual([]);
  expect(r.rejected).toMatchObject([
    {
      code: 'OCI_REFERRER_MISMATCH',
      message: expect.stringContaining('is listed as a sigstore bundle but is'),
    },
  ]);
});
