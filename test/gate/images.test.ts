import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalise } from '../../src/config.js';
import { createGate, type Gate } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import {
  OCI_INDEX,
  pushBundleArtifact,
  pushImage,
  pushManifest,
  pushReferrersTag,
  type Descriptor,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim } from '../support/registry-shim.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Images by reference: a tag is resolved to its digest once and both are recorded; the image's
 * repository is searched, and the configured attestation repositories too; an image index is
 * decided on as itself, with its platform manifests' evidence counted when configured. Real
 * registry (crane's) on 127.0.0.1, real bundles from the local Sigstore services.
 */
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
let svc: LocalSigstore;
let registry: RegistryServer;
let dir: string;
let rootFile: string;
const gates: Gate[] = [];

beforeAll(async () => {
  [svc, registry] = await Promise.all([startLocalSigstore(), startRegistry()]);
  dir = mkdtempSync(path.join(tmpdir(), 'gate-images-'));
  rootFile = path.join(dir, 'trusted_root.json');
  writeFileSync(rootFile, JSON.stringify(svc.trustedRoot));
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([registry?.close(), svc?.close()]);
});

async function gateWith(oci?: Record<string, unknown>): Promise<Gate> {
  const config = normalise(
    {
      trustedRoot: rootFile,
      policy: { path: path.join(FIXTURES, 'policies', 'requires-provenance') },
      ledger: { path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db') },
      ...(oci ? { sources: { oci } } : {}),
    },
    dir,
    'test-config',
  );
  const gate = await createGate(config);
  gates.push(gate);
  return gate;
}

/** A keyless provenance bundle about `digest`, attached to `subject` in `repo`. */
async function attest(repo: string, subject: Descriptor, digest = subject.digest) {
  const m = await mintDSSEBundle(svc, {
    statement: {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'app', digest: { sha256: digest.slice(7) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
    },
    version: '0.3',
    signer: 'keyless',
  });
  const ref = await pushBundleArtifact(
    registry.url,
    repo,
    subject,
    Buffer.from(JSON.stringify(m.bundle)),
  );
  await pushReferrersTag(registry.url, repo, subject.digest, [ref]);
}

/** A decision for dev on images named by reference. */
const onImage = (gate: Gate, ...images: string[]) =>
  gate.check({ subjects: [], images, environment: 'dev' });

const verified = (d: { evidence: Array<{ status: string }> }) =>
  d.evidence.filter((e) => e.status === 'verified');

describe('an image named by tag', () => {
  it('is resolved to its digest once, decided on by digest, and recorded with its tag', async () => {
    const img = await pushImage(registry.url, 'tagged/app', 'v2');
    await attest('tagged/app', img);
    const gate = await gateWith();
    const d = await onImage(gate, `${registry.host}/tagged/app:v2`);
    expect(d.outcome).toBe('allow');
    expect(d.subjects).toEqual([
      {
        name: `${registry.host}/tagged/app`,
        digest: { sha256: img.digest.slice(7) },
        image: {
          reference: `${registry.host}/tagged/app:v2`,
          repository: `${registry.host}/tagged/app`,
          tag: 'v2',
        },
      },
    ]);
    expect(verified(d)).toHaveLength(1);
    // the decision says where it looked and what each layout held
    const where = `oci:${registry.host}/tagged/app`;
    expect(d.searched).toEqual([
      {
        where,
        layout: 'referrers-api',
        subject: img.digest,
        outcome: 'absent',
        referrers: 0,
        bundles: 0,
        rejected: 0,
      },
      {
        where,
        layout: 'referrers-tag',
        subject: img.digest,
        outcome: 'listed',
        referrers: 1,
        bundles: 1,
        rejected: 0,
      },
      {
        where,
        layout: 'cosign-att',
        subject: img.digest,
        outcome: 'absent',
        referrers: 0,
        bundles: 0,
        rejected: 0,
      },
      {
        where,
        layout: 'cosign-sig',
        subject: img.digest,
        outcome: 'absent',
        referrers: 0,
        bundles: 0,
        rejected: 0,
      },
    ]);
  });

  it('is the digest given when the reference has both a tag and a digest', async () => {
    const img = await pushImage(registry.url, 'both/app', 'v1');
    const other = await pushImage(registry.url, 'both/app', 'v2');
    const gate = await gateWith();
    const ref = `${registry.host}/both/app:v2@${img.digest}`;
    const d = await onImage(gate, ref);
    expect(d.subjects[0]!.digest).toEqual({ sha256: img.digest.slice(7) });
    expect(d.subjects[0]!.digest).not.toEqual({ sha256: other.digest.slice(7) });
    expect(d.outcome).toBe('deny');
  });

  it('finds attestations kept in a configured attestation repository (cosign COSIGN_REPOSITORY)', async () => {
    const img = await pushImage(registry.url, 'plain/app', 'v1');
    // the attestation repository holds the bundle, referring to the image's digest
    await pushImage(registry.url, 'attestations/store', 'anchor');
    await attest('attestations/store', img);
    const only = await gateWith({ repositories: [] });
    const images = [`${registry.host}/plain/app:v1`];
    expect((await onImage(only, ...images)).outcome).toBe('deny');
    const both = await gateWith({ repositories: [`${registry.host}/attestations/store`] });
    const d = await onImage(both, ...images);
    expect(d.outcome).toBe('allow');
    expect(verified(d)[0]).toMatchObject({
      source: expect.stringContaining(`oci:${registry.host}/attestations/store@`),
    });
  });

  it('searches only the configured repositories when searchImageRepository is false', async () => {
    const front = await startShim(registry.url);
    try {
      const img = await pushImage(front.url, 'own/app', 'v1');
      await attest('own/app', img);
      const gate = await gateWith({ repositories: [], searchImageRepository: false });
      const d = await onImage(gate, `${front.host}/own/app:v1`);
      expect(d.outcome).toBe('deny');
      expect(front.seen.filter((l) => /referrers|sha256-/.test(l))).toEqual([]);
    } finally {
      await front.close();
    }
  });

  it('is resolved and searched in a private registry with the docker config.json credentials', async () => {
    const login = { scheme: 'bearer' as const, username: 'ci', password: 'pw-9z' };
    const front = await startShim(registry.url, { login });
    try {
      const img = await pushImage(registry.url, 'private/app', 'v1');
      await attest('private/app', img);
      const images = [`${front.host}/private/app:v1`];
      // a config.json the configuration names must be there: read at the first challenge
      const missing = await gateWith({ repositories: [], dockerConfig: 'none.json' });
      await expect(onImage(missing, ...images)).rejects.toMatchObject({
        code: 'SOURCE_AUTH_FAILED',
        message: expect.stringContaining('cannot read docker config'),
      });
      const auth = Buffer.from('ci:pw-9z').toString('base64');
      writeFileSync(
        path.join(dir, 'docker.json'),
        JSON.stringify({ auths: { [front.host]: { auth } } }),
      );
      const gate = await gateWith({ repositories: [], dockerConfig: 'docker.json' });
      const d = await onImage(gate, ...images);
      expect(d.outcome).toBe('allow');
      expect(d.subjects[0]!.digest).toEqual({ sha256: img.digest.slice(7) });
      const noCreds = await gateWith({ repositories: [] });
      await expect(onImage(noCreds, ...images)).rejects.toMatchObject({
        code: 'SOURCE_AUTH_FAILED',
      });
    } finally {
      await front.close();
    }
  });

  it('is IMAGE_NOT_FOUND when the tag does not exist, and the CLI exits 2', async () => {
    await pushImage(registry.url, 'missing/app', 'v1');
    const gate = await gateWith();
    await expect(onImage(gate, `${registry.host}/missing/app:v9`)).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
    });
    const r = await cli(['--image', `${registry.host}/missing/app:v9`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`IMAGE_NOT_FOUND: ${registry.host}/missing/app has no tag v9`);
  });

  it('could not decide (exit 2) when the registry cannot be reached, and never allows', async () => {
    const front = await startShim(registry.url);
    const host = front.host;
    await front.close();
    const r = await cli(['--image', `${host}/gone/app:v1`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SOURCE_UNREACHABLE/);
    const pinned = await cli(['--image', `${host}/gone/app@sha256:${'a'.repeat(64)}`]);
    expect(pinned.code).toBe(2);
    expect(pinned.stdout).toMatch(/^COULD NOT DECIDE/);
    expect(pinned.stdout).toMatch(/could not look at oci:.*SOURCE_UNREACHABLE/);
    expect(pinned.stdout).toContain(
      `searched oci:${host}/gone/app@sha256:aaaaaaaaaaaa: referrers-api failed; referrers-tag failed; cosign-att failed; cosign-sig failed`,
    );
  });

  it('refuses a malformed reference as a usage error', async () => {
    for (const bad of ['UPPER/case:v1', `${registry.host}/app@sha256:abc`, 'a b']) {
      const r = await cli(['--image', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/USAGE_ERROR: image /);
    }
  });
});

describe('an image index', () => {
  let index: Descriptor;
  let amd64: Descriptor;
  beforeAll(async () => {
    amd64 = await pushImage(registry.url, 'multi/app', 'amd64');
    const arm64 = await pushImage(registry.url, 'multi/app', 'arm64');
    index = await pushManifest(
      registry.url,
      'multi/app',
      {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...amd64, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      },
      'v1',
    );
    // buildx-style: provenance about the platform manifest, attached to it
    await attest('multi/app', amd64);
  });

  it('is decided on as itself: platform evidence does not count unless configured', async () => {
    const gate = await gateWith();
    const d = await onImage(gate, `${registry.host}/multi/app:v1`);
    expect(d.subjects[0]!.digest).toEqual({ sha256: index.digest.slice(7) });
    expect(d.outcome).toBe('deny');
    expect(verified(d)).toEqual([]);
  });

  it('counts evidence on a platform manifest for the index when sources.oci.platforms is set', async () => {
    const gate = await gateWith({ repositories: [], platforms: true });
    const d = await onImage(gate, `${registry.host}/multi/app:v1`);
    expect(d.subjects[0]!.digest).toEqual({ sha256: index.digest.slice(7) });
    expect(d.outcome).toBe('allow');
    expect(verified(d)).toEqual([
      expect.objectContaining({
        platformManifest: { digest: amd64.digest, platform: 'linux/amd64' },
      }),
    ]);
  });

  it('does not count a platform manifest for a subject that is not its index', async () => {
    const gate = await gateWith({ repositories: [], platforms: true });
    const d = await onImage(gate, `${registry.host}/multi/app:amd64`);
    // the platform manifest asked about directly: its own evidence, found as any image's
    expect(d.subjects[0]!.digest).toEqual({ sha256: amd64.digest.slice(7) });
    expect(d.outcome).toBe('allow');
    expect(verified(d)[0]).not.toHaveProperty('platformManifest');
  });
});

describe('admission', () => {
  const review = (images: string[]) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'shop',
      object: {
        kind: 'Pod',
        metadata: { name: 'app' },
        spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
      },
    },
  });

  it("searches each container image's own repository for its attestations", async () => {
    const web = await pushImage(registry.url, 'shop/web', 'v1');
    const api = await pushImage(registry.url, 'shop/api', 'v1');
    await attest('shop/web', web);
    const gate = await gateWith();
    const app = createServer({
      gate,
      config: normalise({ ledger: { path: path.join(dir, 'unused.db') } }, dir, 'x'),
      tokens: {},
      ready: () => true,
    });
    try {
      const admit = async (images: string[]) =>
        (
          await app.inject({
            method: 'POST',
            url: '/v1/admission?env=dev',
            payload: review(images),
          })
        ).json().response;
      const webRef = `${registry.host}/shop/web@${web.digest}`;
      const apiRef = `${registry.host}/shop/api@${api.digest}`;
      expect(await admit([webRef])).toMatchObject({ allowed: true });
      // api has no attestation in its repository: the pod is denied, and says which image
      const denied = await admit([webRef, apiRef]);
      expect(denied.allowed).toBe(false);
      expect(denied.status.message).toContain(api.digest.slice(7, 19));
      // tags stay denied in admission, whatever the registry holds
      expect(await admit([`${registry.host}/shop/web:v1`])).toMatchObject({ allowed: false });
    } finally {
      await app.close();
    }
  });
});

async function cli(args: string[]) {
  const base = [BIN, 'check', '--trusted-root', rootFile, '--env', 'dev'];
  base.push('--policy', path.join(FIXTURES, 'policies', 'requires-provenance'));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...base, ...args], {
      cwd: dir,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
