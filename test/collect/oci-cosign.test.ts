import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/collect/http.js';
import { createOciSource, type OciSourceOptions } from '../../src/collect/oci.js';
import { rebuildAttestation } from '../../src/collect/oci-cosign.js';
import { normalise } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import type { ArtifactDigest } from '../../src/subject.js';
import { verifyEvidence, type VerifyContext } from '../../src/verify/evidence.js';
import { COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE } from '../../src/verify/image-signature.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { schemaChecker } from '../../src/util/schemas.js';
import {
  A,
  attLayer,
  rekorBundleAnnotation,
  sigLayer,
  simpleSigning,
} from '../support/cosign-legacy.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, mintMessageBundle } from '../support/mint.js';
import { mutate } from '../support/mutate.js';
import { pushImage, pushLegacyCosign, type Descriptor } from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim, type RegistryShim } from '../support/registry-shim.js';
import { createTLogEntry } from '../support/sigstore-client.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * cosign's legacy `.att` and `.sig` tags in a real registry (crane registry serve), holding
 * layers taken apart from bundles minted at test time against local Fulcio, Rekor and TSA: the
 * registry source rebuilds each layer as a v0.1 bundle, and the verifier must accept exactly the
 * ones that verify.
 */
const checkDecision = schemaChecker('decision.schema.json', 'POLICY_OUTPUT_INVALID', 'decision');
const subjectOf = (d: Descriptor): ArtifactDigest => ({
  algorithm: 'sha256',
  hex: d.digest.slice(7),
});
const provenance = (hex: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'registry.example/app', digest: { sha256: hex } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://example.com/build/v1' },
    runDetails: { builder: { id: 'test' } },
  },
});

let registry: RegistryServer;
let svc: LocalSigstore;
let trust: Trust;
let ctx: VerifyContext;
const http = createHttpClient({ retries: 0 });
const shims: RegistryShim[] = [];
const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyPem = signingKey.publicKey.export({ format: 'pem', type: 'spki' }).toString();

beforeAll(async () => {
  [registry, svc] = await Promise.all([startRegistry(), startLocalSigstore()]);
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  ctx = { trust, identities: 'any', keys: [{ pem: keyPem }] };
});
afterAll(async () => {
  await Promise.all(shims.map((s) => s.close()));
  await Promise.all([registry?.close(), svc?.close()]);
  await http.close();
});

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

const cosignLayouts = (r: Awaited<ReturnType<typeof collect>>) =>
  r.searched
    .filter((l) => l.layout.startsWith('cosign-'))
    .map((l) => [l.layout, l.outcome, l.referrers, l.bundles, l.rejected]);

/** A keyless SET-only (v0.1) attestation about `image`, as a cosign `.att` layer. */
async function keylessAtt(image: Descriptor, extra: { tsa?: boolean } = {}) {
  const m = await mintDSSEBundle(svc, {
    statement: provenance(image.digest.slice(7)),
    version: '0.1',
    signer: 'keyless',
    ...extra,
  });
  return { minted: m, layer: attLayer(m, svc) };
}

/** A keyless SET-only image signature over cosign's simple-signing payload naming `digest`. */
async function keylessSig(digest: string) {
  const payload = simpleSigning(digest, 'registry.example/app', { tag: 'v1' });
  const m = await mintMessageBundle(svc, { artifact: payload, version: '0.1', signer: 'keyless' });
  return { minted: m, layer: sigLayer(m, svc, payload) };
}

describe('@sigstore/verify on a SET-only v0.1 bundle (what every legacy layer becomes)', () => {
  it('verifies the inclusion promise and takes the integrated time as the signing time', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: provenance('ab'.repeat(32)),
      version: '0.1',
      signer: 'keyless',
    });
    const entry = m.bundle.verificationMaterial.tlogEntries[0]!;
    expect(entry.inclusionProof).toBeUndefined();
    const v = verifyBundle(JSON.stringify(m.bundle), { trust, identities: 'any' });
    expect(v.tlog).toBe('inclusion-promise');
    expect(v.timeSource).toBe('transparency-log');
    expect(v.timestamps).toEqual([
      {
        source: 'transparency-log',
        time: new Date(Number(entry.integratedTime) * 1000).toISOString(),
      },
    ]);
    // The one-field negative: the same bundle with one byte of its SET changed.
    const bad = mutate(
      m.bundle,
      'verificationMaterial.tlogEntries.0.inclusionPromise.signedEntryTimestamp',
      (s) => flipByte(s as string),
    );
    expect(() => verifyBundle(JSON.stringify(bad), { trust, identities: 'any' })).toThrow(
      expect.objectContaining({ code: 'TLOG_INVALID' }),
    );
  });

  it('reports a bundle with an inclusion proof as such', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: provenance('cd'.repeat(32)),
      version: '0.3',
      signer: 'keyless',
    });
    expect(verifyBundle(JSON.stringify(m.bundle), { trust, identities: 'any' }).tlog).toBe(
      'inclusion-proof',
    );
  });
});

describe('cosign .att tags', () => {
  it('finds a keyless attestation and it verifies with the SET alone', async () => {
    const image = await pushImage(registry.url, 'att/keyless');
    const { layer } = await keylessAtt(image);
    const att = await pushLegacyCosign(registry.url, 'att/keyless', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/keyless', image);
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(cosignLayouts(r)).toEqual([
      ['cosign-att', 'listed', 1, 1, 0],
      ['cosign-sig', 'absent', 0, 0, 0],
    ]);
    expect(att.digest).toMatch(/^sha256:/);
    const e = r.evidence[0]!;
    const layerDigest = `sha256:${createHash('sha256').update(layer.blob).digest('hex')}`;
    expect(e.kind).toBe('bundle');
    expect(e.source).toBe(
      `oci:${registry.host}/att/keyless@${image.digest}#cosign-att:${layerDigest}`,
    );
    const [outcome] = verifyEvidence([e], [subjectOf(image)], ctx);
    expect(outcome!.error).toBeUndefined();
    const a = outcome!.attestations[0]!;
    expect(a.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(a.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.1');
    expect(a.signer).toMatchObject({ kind: 'keyless', identity: DEFAULT_IDENTITY.san });
    expect(a.logEntries[0]).toMatchObject({ kind: 'dsse', version: '0.0.1' });
    expect(a.tlog).toBe('inclusion-promise');
    expect(a.timeSource).toBe('transparency-log');
  });

  it('rebuilds the rfc 3161 timestamp annotation, which the verifier then checks', async () => {
    const image = await pushImage(registry.url, 'att/tsa');
    const { layer } = await keylessAtt(image, { tsa: true });
    expect(layer.annotations[A.timestamp]).toBeDefined();
    await pushLegacyCosign(registry.url, 'att/tsa', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/tsa', image);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.error).toBeUndefined();
    expect(outcome!.attestations[0]!.timestamps.map((t) => t.source).sort()).toEqual([
      'timestamp-authority',
      'transparency-log',
    ]);
  });

  it('verifies a key-signed attestation with a configured key, and only with it', async () => {
    const image = await pushImage(registry.url, 'att/keyed');
    const m = await mintDSSEBundle(svc, {
      statement: provenance(image.digest.slice(7)),
      version: '0.1',
      signer: 'key',
      privateKey: signingKey.privateKey,
    });
    const layer = attLayer(m, svc);
    expect(layer.annotations[A.certificate]).toBeUndefined();
    await pushLegacyCosign(registry.url, 'att/keyed', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/keyed', image);
    expect(r.evidence).toHaveLength(1);
    const [ok] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(ok!.error).toBeUndefined();
    expect(ok!.attestations[0]!.signer.kind).toBe('key');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const [wrongKey] = verifyEvidence(r.evidence, [subjectOf(image)], {
      ...ctx,
      keys: [{ pem: other.export({ format: 'pem', type: 'spki' }).toString() }],
    });
    expect(wrongKey!.error?.code).toBe('SIGNATURE_INVALID');
    const [noKey] = verifyEvidence(r.evidence, [subjectOf(image)], { ...ctx, keys: [] });
    expect(noKey!.error?.code).toBe('PUBLIC_KEY_INVALID');
  });

  it('fails an attestation whose SET was tampered with', async () => {
    const image = await pushImage(registry.url, 'att/badset');
    const { layer } = await keylessAtt(image);
    const rb = JSON.parse(layer.annotations[A.bundle]!) as { SignedEntryTimestamp: string };
    rb.SignedEntryTimestamp = flipByte(rb.SignedEntryTimestamp);
    layer.annotations[A.bundle] = JSON.stringify(rb);
    await pushLegacyCosign(registry.url, 'att/badset', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/badset', image);
    expect(r.evidence).toHaveLength(1);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.attestations).toEqual([]);
    expect(outcome!.error?.code).toBe('TLOG_INVALID');
  });

  it('rejects a layer whose blob does not match its digest', async () => {
    const front = await shim({ tamperBlobs: true });
    const image = await pushImage(registry.url, 'att/tamper');
    const { layer } = await keylessAtt(image);
    await pushLegacyCosign(registry.url, 'att/tamper', image.digest, 'att', [layer]);
    const r = await collect(front.host, 'att/tamper', image);
    expect(r.evidence).toEqual([]);
    expect(r.failures).toEqual([]);
    expect(r.rejected.map((x) => [x.code, x.source.split('#')[1]!.split(':')[0]])).toEqual([
      ['OCI_DIGEST_MISMATCH', 'cosign-att'],
    ]);
    expect(cosignLayouts(r)[0]).toEqual(['cosign-att', 'listed', 1, 0, 1]);
  });

  it('rejects malformed annotations with a code, and keeps the good layers', async () => {
    const image = await pushImage(registry.url, 'att/malformed');
    const good = await keylessAtt(image);
    const bad = [
      { ...good.layer, annotations: { ...good.layer.annotations, [A.bundle]: '{"Payload":' } },
      {
        ...good.layer,
        annotations: {
          ...good.layer.annotations,
          [A.bundle]: JSON.stringify({ SignedEntryTimestamp: 'AAAA', Payload: { body: '%%' } }),
        },
      },
      {
        ...good.layer,
        annotations: { ...good.layer.annotations, [A.certificate]: '-----BEGIN CERTIFICATE-----' },
      },
      { ...good.layer, blob: Buffer.from('{"not":"an envelope"}') },
    ];
    await pushLegacyCosign(registry.url, 'att/malformed', image.digest, 'att', [
      ...bad,
      good.layer,
    ]);
    const r = await collect(registry.host, 'att/malformed', image);
    expect(r.failures).toEqual([]);
    expect(r.rejected.map((x) => x.code)).toEqual(Array(4).fill('EVIDENCE_MALFORMED'));
    expect(r.rejected.map((x) => x.message)).toEqual([
      expect.stringContaining('dev.sigstore.cosign/bundle is not json'),
      expect.stringContaining('Payload.body is not base64'),
      expect.stringContaining('dev.sigstore.cosign/certificate is not pem'),
      expect.stringContaining('not a dsse envelope'),
    ]);
    expect(cosignLayouts(r)[0]).toEqual(['cosign-att', 'listed', 5, 1, 4]);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.error).toBeUndefined();
  });

  it('rebuilds a layer without log entry or timestamp, which the verifier then rejects', async () => {
    const image = await pushImage(registry.url, 'att/unlogged');
    const { layer } = await keylessAtt(image);
    delete layer.annotations[A.bundle];
    await pushLegacyCosign(registry.url, 'att/unlogged', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/unlogged', image);
    expect(r.evidence).toHaveLength(1);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.attestations).toEqual([]);
    expect(outcome!.error?.code).toBe('TIMESTAMP_INVALID');
  });

  it('rejects, with a code, an intoto 0.0.1 log entry (what cosign before 2.2.3 logged)', async () => {
    const image = await pushImage(registry.url, 'att/intoto');
    const { minted, layer } = await keylessAtt(image);
    // The entry cosign's `--rekor-entry-type intoto` logs: the envelope's and the payload's
    // hashes and the signer's certificate, no signature; a real SET from the local log over it.
    const payload = Buffer.from(minted.bundle.dsseEnvelope!.payload, 'base64');
    const entry = await createTLogEntry(
      svc,
      {
        kind: 'intoto',
        apiVersion: '0.0.1',
        spec: {
          content: {
            hash: { algorithm: 'sha256', value: sha256hex(layer.blob) },
            payloadHash: { algorithm: 'sha256', value: sha256hex(payload) },
          },
          publicKey: Buffer.from(minted.certificatePem!).toString('base64'),
        },
      } as { kind: string; apiVersion: string },
      false,
    );
    layer.annotations[A.bundle] = JSON.stringify({
      SignedEntryTimestamp: Buffer.from(entry.inclusionPromise!.signedEntryTimestamp).toString(
        'base64',
      ),
      Payload: {
        body: Buffer.from(entry.canonicalizedBody).toString('base64'),
        integratedTime: Number(entry.integratedTime),
        logIndex: Number(entry.logIndex),
        logID: Buffer.from(entry.logId.keyId).toString('hex'),
      },
    });
    await pushLegacyCosign(registry.url, 'att/intoto', image.digest, 'att', [layer]);
    const r = await collect(registry.host, 'att/intoto', image);
    expect(r.evidence).toHaveLength(1);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.attestations).toEqual([]);
    expect(outcome!.error).toMatchObject({
      code: 'TLOG_BODY_MISMATCH',
      message: expect.stringContaining('unsupported intoto version: 0.0.1'),
    });
  });
});

describe('cosign .sig tags', () => {
  it('verifies an image signature over its payload and matches the subject', async () => {
    const image = await pushImage(registry.url, 'sig/keyless');
    const { layer } = await keylessSig(image.digest);
    await pushLegacyCosign(registry.url, 'sig/keyless', image.digest, 'sig', [layer]);
    const r = await collect(registry.host, 'sig/keyless', image);
    expect(r.rejected).toEqual([]);
    expect(cosignLayouts(r)).toEqual([
      ['cosign-att', 'absent', 0, 0, 0],
      ['cosign-sig', 'listed', 1, 1, 0],
    ]);
    const e = r.evidence[0]!;
    expect(e.kind).toBe('image-signature');
    expect(e.payload?.equals(layer.blob)).toBe(true);
    expect(e.source).toContain(`@${image.digest}#cosign-sig:sha256:`);
    const [outcome] = verifyEvidence([e], [subjectOf(image)], ctx);
    expect(outcome!.error).toBeUndefined();
    const a = outcome!.attestations[0]!;
    expect(a.predicateType).toBe(COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE);
    expect(a.predicate).toEqual({
      dockerReference: 'registry.example/app',
      optional: { tag: 'v1' },
    });
    expect(a.matchedSubject).toEqual({
      name: 'registry.example/app',
      digest: { sha256: image.digest.slice(7) },
    });
    expect(a.contentType).toBe('message');
    expect(a.signer).toMatchObject({ kind: 'keyless', identity: DEFAULT_IDENTITY.san });
    expect(a.logEntries[0]).toMatchObject({ kind: 'hashedrekord', version: '0.0.1' });
    expect(a.tlog).toBe('inclusion-promise');
  });

  it('is SUBJECT_MISMATCH when the signed payload names another digest', async () => {
    const image = await pushImage(registry.url, 'sig/other');
    const other = await pushImage(registry.url, 'sig/other', 'other');
    const { layer } = await keylessSig(other.digest);
    await pushLegacyCosign(registry.url, 'sig/other', image.digest, 'sig', [layer]);
    const r = await collect(registry.host, 'sig/other', image);
    expect(r.evidence).toHaveLength(1);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.attestations).toEqual([]);
    expect(outcome!.error).toMatchObject({
      code: 'SUBJECT_MISMATCH',
      message: expect.stringContaining(other.digest),
    });
    // The same signature does count for the digest it names.
    const [forOther] = verifyEvidence(r.evidence, [subjectOf(other)], ctx);
    expect(forOther!.attestations).toHaveLength(1);
  });

  it('fails a payload changed after signing, and a signature annotation that is not base64', async () => {
    const image = await pushImage(registry.url, 'sig/changed');
    const { layer } = await keylessSig(image.digest);
    const changed = {
      ...layer,
      blob: simpleSigning(image.digest, 'registry.example/evil', { tag: 'v1' }),
    };
    const garbled = {
      ...layer,
      annotations: { ...layer.annotations, [A.signature]: 'not base64!' },
    };
    await pushLegacyCosign(registry.url, 'sig/changed', image.digest, 'sig', [changed, garbled]);
    const r = await collect(registry.host, 'sig/changed', image);
    expect(r.rejected.map((x) => x.code)).toEqual(['EVIDENCE_MALFORMED']);
    expect(r.evidence).toHaveLength(1);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.attestations).toEqual([]);
    // The log entry names the original payload's digest: the changed one is caught there first.
    expect(outcome!.error?.code).toBe('TLOG_BODY_MISMATCH');
  });

  it('refuses a signed payload that is not a cosign container image signature', async () => {
    const image = await pushImage(registry.url, 'sig/type');
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': 'registry.example/app' },
          image: { 'docker-manifest-digest': image.digest },
          type: 'atomic container signature',
        },
        optional: null,
      }),
    );
    const m = await mintMessageBundle(svc, {
      artifact: payload,
      version: '0.1',
      signer: 'keyless',
    });
    await pushLegacyCosign(registry.url, 'sig/type', image.digest, 'sig', [
      sigLayer(m, svc, payload),
    ]);
    const r = await collect(registry.host, 'sig/type', image);
    const [outcome] = verifyEvidence(r.evidence, [subjectOf(image)], ctx);
    expect(outcome!.error).toMatchObject({
      code: 'STATEMENT_INVALID',
      message: expect.stringContaining('atomic container signature'),
    });
  });
});

describe('layouts', () => {
  it('reports both tags absent for an image without them', async () => {
    const image = await pushImage(registry.url, 'bare/legacy');
    const r = await collect(registry.host, 'bare/legacy', image);
    expect(r).toMatchObject({ evidence: [], rejected: [], failures: [] });
    expect(cosignLayouts(r)).toEqual([
      ['cosign-att', 'absent', 0, 0, 0],
      ['cosign-sig', 'absent', 0, 0, 0],
    ]);
  });

  it('is a failure, never nothing found, when the registry cannot be read', async () => {
    const front = await shim();
    const host = front.host;
    await front.close();
    shims.splice(shims.indexOf(front), 1);
    const image = await pushImage(registry.url, 'gone/legacy');
    const r = await collect(host, 'gone/legacy', image);
    expect(cosignLayouts(r).map((l) => l[1])).toEqual(['failed', 'failed']);
    expect(r.failures.filter((f) => f.source.includes('#cosign-')).map((f) => f.code)).toEqual([
      'SOURCE_UNREACHABLE',
      'SOURCE_UNREACHABLE',
    ]);
  });

  it('fails the layout when the tag holds something other than an image manifest', async () => {
    const image = await pushImage(registry.url, 'odd/legacy');
    const { pushManifest } = await import('../support/registry-push.js');
    await pushManifest(
      registry.url,
      'odd/legacy',
      { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] },
      `${image.digest.replace(':', '-')}.sig`,
    );
    const r = await collect(registry.host, 'odd/legacy', image);
    expect(cosignLayouts(r)[1]).toEqual(['cosign-sig', 'failed', 0, 0, 0]);
    expect(r.failures.map((f) => [f.source.split('#')[1], f.code])).toEqual([
      ['cosign-sig', 'OCI_MANIFEST_INVALID'],
    ]);
  });
});

describe('decisions', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gate-cosign-'));
    mkdirSync(path.join(dir, 'policy'));
    writeFileSync(
      path.join(dir, 'policy', 'policy.rego'),
      `package gate

# Every subject needs a cosign image signature by the release workflow.
decision := {"allow": count(violations) == 0, "violations": violations, "warnings": [], "rules": ["test.signed"]}

violations := [v |
	some s in input.subjects
	hex := s.digest.sha256
	not signed(hex)
	v := {"id": "test.signed", "message": concat("", ["no image signature for sha256:", hex]), "remediation": "cosign sign", "attestations": [], "subject": concat("", ["sha256:", hex])}
]

signed(hex) if {
	some a in input.attestations
	a.predicateType == "${COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE}"
	a.subject.digest.sha256 == hex
	a.signer.identity == "${DEFAULT_IDENTITY.san}"
}
`,
    );
  });

  async function decide(repo: string, image: Descriptor) {
    const config = normalise(
      {
        policy: { path: path.join(dir, 'policy') },
        ledger: { path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db') },
      },
      dir,
      'test-config',
    );
    const gate = await createGate(config, {
      trust,
      sources: () => [
        createOciSource({ repositories: [`${registry.host}/${repo}`], http, retries: 0 }),
      ],
    });
    try {
      return await gate.check({
        subjects: [{ digest: subjectOf(image) }],
        environment: 'production',
      });
    } finally {
      await gate.close();
    }
  }

  it('allows on an image signature by the required identity and says it rests on a SET', async () => {
    const image = await pushImage(registry.url, 'decide/signed');
    const { layer } = await keylessSig(image.digest);
    await pushLegacyCosign(registry.url, 'decide/signed', image.digest, 'sig', [layer]);
    const d = await decide('decide/signed', image);
    checkDecision(d);
    expect(d.outcome).toBe('allow');
    expect(d.evidence).toEqual([
      expect.objectContaining({
        status: 'verified',
        predicateType: COSIGN_IMAGE_SIGNATURE_PREDICATE_TYPE,
        tlog: 'inclusion-promise',
        timeSource: 'transparency-log',
      }),
    ]);
  });

  it('denies when the only signature is of another image', async () => {
    const image = await pushImage(registry.url, 'decide/unsigned');
    const other = await pushImage(registry.url, 'decide/unsigned', 'other');
    const { layer } = await keylessSig(other.digest);
    await pushLegacyCosign(registry.url, 'decide/unsigned', image.digest, 'sig', [layer]);
    const d = await decide('decide/unsigned', image);
    checkDecision(d);
    expect(d.outcome).toBe('deny');
    expect(d.evidence).toEqual([
      expect.objectContaining({ status: 'rejected', code: 'SUBJECT_MISMATCH' }),
    ]);
  });
});

describe('rebuilding', () => {
  it('writes the exact v0.1 bundle shape, with the log id as base64 of its hex', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: provenance('ef'.repeat(32)),
      version: '0.1',
      signer: 'keyless',
    });
    const layer = attLayer(m, svc);
    const b = JSON.parse(rebuildAttestation(layer.blob, layer.annotations).toString()) as {
      mediaType: string;
      verificationMaterial: Record<string, unknown>;
    };
    const e = m.bundle.verificationMaterial.tlogEntries[0]!;
    expect(b.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.1');
    expect(b.verificationMaterial.tlogEntries).toEqual([
      {
        logIndex: e.logIndex,
        logId: { keyId: e.logId.keyId },
        kindVersion: { kind: 'dsse', version: '0.0.1' },
        integratedTime: e.integratedTime,
        inclusionPromise: { signedEntryTimestamp: e.inclusionPromise!.signedEntryTimestamp },
        canonicalizedBody: e.canonicalizedBody,
      },
    ]);
    const chain = (b.verificationMaterial.x509CertificateChain as { certificates: unknown[] })
      .certificates;
    expect(chain.length).toBe(
      1 + svc.trustedRoot.certificateAuthorities[0]!.certChain.certificates.length,
    );
    expect(rekorBundleAnnotation(m.bundle)).toContain('"SignedEntryTimestamp"');
  });
});

async function shim(opts: Parameters<typeof startShim>[1] = {}): Promise<RegistryShim> {
  const s = await startShim(registry.url, opts);
  shims.push(s);
  return s;
}

function flipByte(b64: string): string {
  const bytes = Buffer.from(b64, 'base64');
  bytes[bytes.length - 1]! ^= 1;
  return bytes.toString('base64');
}

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
