import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/collect/http.js';
import { defaultSources } from '../../src/collect/sources.js';
import { normalise } from '../../src/config.js';
import {
  BUNDLE_V03,
  pushBundleArtifact,
  pushImage,
  pushReferrersTag,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';

let registry: RegistryServer;
const http = createHttpClient({ retries: 0 });
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.close();
  await http.close();
});

describe('when sources.oci is configured', () => {
  it('searches the configured repository for the subject', async () => {
    const image = await pushImage(registry.url, 'conf/app');
    const b = Buffer.from(JSON.stringify({ mediaType: BUNDLE_V03, n: 'config' }));
    const ref = await pushBundleArtifact(registry.url, 'conf/app', image, b);
    await pushReferrersTag(registry.url, 'conf/app', image.digest, [ref]);
    const config = normalise(
      { sources: { oci: { repositories: [`${registry.host}/conf/app`] } } },
      '/',
      'x',
    );
    const sources = await defaultSources(config.sources, [], http);
    expect(sources.map((s) => s.name)).toEqual([`oci:${registry.host}/conf/app`]);
    const r = await sources[0]!.collect({
      subject: { algorithm: 'sha256', hex: image.digest.slice(7) },
    });
    expect(r.evidence.map((e) => e.bytes.toString())).toEqual([b.toString()]);
  });

  it('refuses a repository without a registry host in the schema', () => {
    expect(() => normalise({ sources: { oci: { repositories: ['alpine'] } } }, '/', 'x')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
