import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import {
  COSIGN,
  ORAS,
  cosignServices,
  identityTokenFile,
  peer,
  type Peer,
} from '../support/peers.js';
import { editBase64JSON, mutate } from '../support/mutate.js';
import {
  BUNDLE_V03,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBundleArtifact,
  pushImage,
  pushReferrersTag,
  type Descriptor,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim, type RegistryShim } from '../support/registry-shim.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Real peers write attestations into a real registry and `gate check --image` (the built
 * binary) finds and verifies each layout: cosign v3 attest in its bundle format (referrers, or
 * the referrers tag schema where the registry has no API) and in its legacy `.att` layout
 * (`--new-bundle-format=false`), key-signed and keyless against the local Sigstore services,
 * cosign sign's legacy `.sig`, and a raw Sigstore bundle attached by oras. Two registries:
 * crane's, which has no referrers API, and the same behind test/support/registry-shim.ts, which
 * adds only that API as the OCI distribution spec 1.1 defines it.
 */
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const POLICY = path.join(FIXTURES, 'policies', 'requires-provenance');
const IDENTITY = {
  iss: 'https://token.actions.githubusercontent.com',
  sub: 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main',
};
const PROVENANCE_PREDICATE = {
  buildDefinition: { buildType: 'https://example.com/build/v1', externalParameters: {} },
  runDetails: { builder: { id: 'https://example.com/builder' } },
};

let svc: LocalSigstore;
let registry: RegistryServer;
let shim: RegistryShim;
let cosign: Peer;
let oras: Peer;
let rootFile: string;
let configFile: string;

beforeAll(async () => {
  [svc, registry] = await Promise.all([startLocalSigstore(), startRegistry()]);
  shim = await startShim(registry.url);
  cosign = peer(COSIGN);
  oras = peer(ORAS);
  rootFile = path.join(cosign.dir, 'trusted_root.json');
  writeFileSync(rootFile, JSON.stringify(svc.trustedRoot));
  writeFileSync(path.join(cosign.dir, 'predicate.json'), JSON.stringify(PROVENANCE_PREDICATE));
  await cosign.run(['generate-key-pair'], { COSIGN_PASSWORD: 'pw' });
  configFile = path.join(cosign.dir, 'gate.yaml');
  writeFileSync(configFile, `keys:\n  - path: ${path.join(cosign.dir, 'cosign.pub')}\n`);
}, 60_000);
afterAll(async () => {
  await shim?.close();
  await Promise.all([registry?.close(), svc?.close()]);
});

/** The referrers of a digest, as the registry lists them (the API, else the fallback tag). */
async function referrersOf(host: string, repo: string, digest: string): Promise<Descriptor[]> {
  const api = await fetch(`http://${host}/v2/${repo}/referrers/${digest}`);
  const res = api.ok
    ? api
    : await fetch(`http://${host}/v2/${repo}/manifests/${digest.replace(':', '-')}`, {
        headers: { accept: OCI_INDEX },
      });
  return ((await res.json()) as { manifests: Descriptor[] }).manifests;
}

/** The Sigstore bundle a referrer holds, parsed. */
async function bundleOf(host: string, repo: string, digest: string): Promise<object> {
  const manifest = (await (
    await fetch(`http://${host}/v2/${repo}/manifests/${digest}`, {
      headers: { accept: OCI_MANIFEST },
    })
  ).json()) as { layers: Descriptor[] };
  const blob = await fetch(`http://${host}/v2/${repo}/blobs/${manifest.layers[0]!.digest}`);
  return JSON.parse(await blob.text()) as object;
}

async function sizeOf(host: string, img: { pinned: string; digest: string }) {
  const repo = img.pinned.slice(host.length + 1, img.pinned.indexOf('@'));
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${img.digest}`, {
    headers: { accept: OCI_MANIFEST },
  });
  return { size: (await res.arrayBuffer()).byteLength };
}

async function gateCheck(image: string) {
  const args = [BIN, 'check', '--config', configFile, '--trusted-root', rootFile];
  args.push('--policy', POLICY, '--image', image, '--env', 'dev', '--format', 'json');
  try {
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: cosign.dir });
    return { code: 0, decision: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return {
      code: e.code,
      decision: e.stdout ? JSON.parse(e.stdout) : undefined,
      stderr: e.stderr,
    };
  }
}

type Signer = 'key' | 'keyless';
const signWith = (signer: Signer): string[] =>
  signer === 'key'
    ? ['--key', 'cosign.key']
    : ['--identity-token', identityTokenFile(cosign.dir, IDENTITY)];

function cosignAttest(ref: string, signer: Signer, legacy: boolean) {
  return cosign.run(
    [
      'attest',
      '--yes',
      ...signWith(signer),
      ...cosignServices(svc, rootFile),
      ...(legacy ? ['--new-bundle-format=false'] : []),
      ...['--predicate', 'predicate.json', '--type', 'slsaprovenance1'],
      '--allow-http-registry',
      ref,
    ],
    { COSIGN_PASSWORD: 'pw' },
  );
}

const registries = [
  ['crane registry serve (no referrers api)', () => registry.host, 'referrers-tag'],
  ['the referrers api shim in front of it', () => shim.host, 'referrers-api'],
] as const;

describe.each(registries)('%s', (_name, hostOf, newLayout) => {
  async function image(repo: string) {
    const host = hostOf();
    const d = await pushImage(`http://${host}`, repo, 'v1');
    return {
      tagged: `${host}/${repo}:v1`,
      pinned: `${host}/${repo}@${d.digest}`,
      digest: d.digest,
    };
  }

  for (const signer of ['key', 'keyless'] as const) {
    it(`finds and verifies cosign attest (bundle format, ${signer})`, async () => {
      const img = await image(`new-${signer}/app`);
      await cosignAttest(img.pinned, signer, false);
      const r = await gateCheck(img.tagged);
      expect(r.code).toBe(0);
      expect(r.decision.subjects[0]).toMatchObject({
        digest: { sha256: img.digest.slice(7) },
        image: { reference: img.tagged, tag: 'v1' },
      });
      const verified = r.decision.evidence.filter(
        (e: { status: string }) => e.status === 'verified',
      );
      expect(verified).toHaveLength(1);
      expect(verified[0].source).toContain(`#${newLayout}:`);
      expect(verified[0].signer.kind).toBe(signer === 'key' ? 'key' : 'keyless');
    });

    it(`finds and verifies cosign attest --new-bundle-format=false (.att, ${signer})`, async () => {
      const img = await image(`att-${signer}/app`);
      await cosignAttest(img.pinned, signer, true);
      const r = await gateCheck(img.tagged);
      expect(r.code).toBe(0);
      const verified = r.decision.evidence.filter(
        (e: { status: string }) => e.status === 'verified',
      );
      expect(verified).toHaveLength(1);
      expect(verified[0].source).toContain('#cosign-att:');
    });
  }

  for (const legacy of [false, true]) {
    it(`finds and verifies cosign sign (${legacy ? 'legacy .sig' : 'bundle format'}) as an image signature`, async () => {
      const img = await image(`sign-${legacy ? 'sig' : 'new'}/app`);
      await cosign.run(
        [
          'sign',
          '--yes',
          ...signWith('key'),
          ...cosignServices(svc, rootFile),
          ...(legacy ? ['--new-bundle-format=false'] : []),
          '--allow-http-registry',
          img.pinned,
        ],
        { COSIGN_PASSWORD: 'pw' },
      );
      const r = await gateCheck(img.tagged);
      // a signature is not provenance: the policy still denies, on verified evidence
      expect(r.code).toBe(1);
      const verified = r.decision.evidence.filter(
        (e: { status: string }) => e.status === 'verified',
      );
      expect(verified).toEqual([
        expect.objectContaining({
          predicateType: 'https://sigstore.dev/cosign/sign/v1',
          source: expect.stringContaining(legacy ? '#cosign-sig:' : `#${newLayout}:`),
          signer: expect.objectContaining({ kind: 'key' }),
        }),
      ]);
    });
  }

  it('finds and verifies a raw sigstore bundle attached by oras', async () => {
    const img = await image('oras/app');
    const minted = await mintDSSEBundle(svc, {
      statement: {
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: 'app', digest: { sha256: img.digest.slice(7) } }],
        predicateType: 'https://slsa.dev/provenance/v1',
        predicate: PROVENANCE_PREDICATE,
      },
      version: '0.3',
      signer: 'keyless',
    });
    writeFileSync(path.join(oras.dir, 'bundle.json'), JSON.stringify(minted.bundle));
    await oras.run([
      'attach',
      '--plain-http',
      '--artifact-type',
      BUNDLE_V03,
      img.pinned,
      `bundle.json:${BUNDLE_V03}`,
    ]);
    const r = await gateCheck(img.tagged);
    expect(r.code).toBe(0);
    const verified = r.decision.evidence.filter((e: { status: string }) => e.status === 'verified');
    expect(verified.map((e: { source: string }) => e.source)).toEqual([
      expect.stringContaining(`#${newLayout}:`),
    ]);
  });

  it("rejects tampered copies of cosign's attestation, and never allows on them", async () => {
    const img = await image('tamper/app');
    await cosignAttest(img.pinned, 'key', false);
    const listed = await referrersOf(hostOf(), 'tamper/app', img.digest);
    const original = await bundleOf(hostOf(), 'tamper/app', listed[0]!.digest);
    // (1) the statement edited to claim another builder: the signature no longer holds
    const edited = mutate(original, ['dsseEnvelope', 'payload'], (p) =>
      editBase64JSON(p as string, (st) =>
        mutate(st, ['predicate', 'runDetails', 'builder', 'id'], () => 'https://evil.example'),
      ),
    );
    // (2) cosign's real attestation of this image, attached to another image
    const other = await image('tamper/other');
    for (const [target, bundle] of [
      [img, edited],
      [other, original],
    ] as const) {
      const ref = await pushBundleArtifact(
        `http://${hostOf()}`,
        target === img ? 'tamper/app' : 'tamper/other',
        {
          mediaType: OCI_MANIFEST,
          digest: target.digest,
          ...(await sizeOf(hostOf(), target)),
        },
        Buffer.from(JSON.stringify(bundle)),
      );
      if (newLayout === 'referrers-tag') {
        const repo = target === img ? 'tamper/app' : 'tamper/other';
        const keep = target === img ? listed : [];
        await pushReferrersTag(`http://${hostOf()}`, repo, target.digest, [...keep, ref]);
      }
    }
    const r = await gateCheck(img.tagged);
    expect(r.code).toBe(0); // the untouched original still stands
    const rejected = r.decision.evidence.filter((e: { status: string }) => e.status === 'rejected');
    // a key-signed bundle's signature is tried against the trusted keys first: none verifies
    // the edited statement
    expect(rejected.map((e: { code: string }) => e.code)).toEqual(['SIGNATURE_INVALID']);
    const moved = await gateCheck(other.tagged);
    expect(moved.code).toBe(1);
    expect(moved.decision.outcome).toBe('deny');
    expect(moved.decision.evidence.map((e: { status: string }) => e.status)).not.toContain(
      'verified',
    );
  });

  it('denies an image cosign never attested, having searched every layout', async () => {
    const img = await image('bare/app');
    const r = await gateCheck(img.tagged);
    expect(r.code).toBe(1);
    expect(r.decision.sourceFailures).toEqual([]);
    expect(r.decision.evidence).toEqual([]);
  });
});
