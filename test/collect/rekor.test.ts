import { createHash, createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { toSignedEntity } from '@sigstore/verify';
import { verifyMerkleInclusion } from '@sigstore/verify/dist/tlog/merkle.js';
import { verifyTLogBody, verifyTLogInclusion } from '@sigstore/verify/dist/tlog/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type Dispatcher } from 'undici';
import { createHttpClient } from '../../src/collect/http.js';
import { hashedRekordBundle } from '../../src/collect/rekor-bundle.js';
import { decodeBody, parseEntry } from '../../src/collect/rekor-entry.js';
import { createRekorSource, type RekorSourceOptions } from '../../src/collect/rekor.js';
import type { CollectResult, Evidence } from '../../src/collect/types.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { parseBundle } from '../../src/verify/bundle.js';
import { messageContent } from '../../src/verify/content.js';
import { loadTrustedRoot, trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { ArtifactDigest } from '../../src/verify/types.js';
import { FIXTURES } from '../helpers.js';
import { toPEM } from '../support/local-fulcio.js';
import { preAuthEncoding } from '../support/local-rekor.js';
import { DEFAULT_IDENTITY, IN_TOTO_PAYLOAD_TYPE } from '../support/mint.js';
import {
  dsseProposal,
  hashedrekordProposal,
  intotoProposal,
  MerkleTree,
  startRekorServer,
  startReplayServer,
  upload,
  type EnvelopeJSON,
  type RekorServer,
} from '../support/rekor-server.js';
import { requestCertificate } from '../support/sigstore-client.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

const hex = (alg: 'sha256' | 'sha512', data: Buffer | string) =>
  createHash(alg).update(data).digest('hex');
const digest = (artifact: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): ArtifactDigest => ({
  algorithm,
  hex: hex(algorithm, artifact),
});
const newArtifact = () => Buffer.from(`artifact ${randomUUID()}\n`);

function statement(artifact: Buffer, n = 0): object {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [
      {
        name: 'app.tgz',
        digest: { sha256: hex('sha256', artifact), sha512: hex('sha512', artifact) },
      },
    ],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: { buildDefinition: { buildType: 'https://gate.test/build', n } },
  };
}

interface Signer {
  privateKey: KeyObject;
  /** the verifier the log records: a Fulcio certificate or a public key, PEM */
  pem: string;
}

function signEnvelope(signer: Signer, payload: object | Buffer): EnvelopeJSON {
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  const sig = sign('sha256', preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, bytes), signer.privateKey);
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: bytes.toString('base64'),
    signatures: [{ keyid: '', sig: sig.toString('base64') }],
  };
}

const envelopeEvidence = (
  env: EnvelopeJSON,
  kind: Evidence['kind'] = 'dsse-envelope',
): Evidence => {
  // A bundle found elsewhere (e.g. a .sigstore.json file): only its envelope matters to the join.
  const doc = kind === 'bundle' ? { mediaType: 'x', dsseEnvelope: env } : env;
  const bytes = Buffer.from(JSON.stringify(doc));
  return { id: hex('sha256', bytes), source: 'file:test', kind, bytes };
};

let svc: LocalSigstore;
let rekor: RekorServer;
let trust: Trust;
let keyless: Signer;
let keyed: Signer;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  svc = await startLocalSigstore();
  rekor = await startRekorServer();
  trust = trustFromJSON({ ...svc.trustedRoot, tlogs: [rekor.trustedRootTlog] }, 'test', 'test');
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keyless = {
    privateKey: pair.privateKey,
    pem: toPEM(await requestCertificate(svc, pair, DEFAULT_IDENTITY)),
  };
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keyed = {
    privateKey: key.privateKey,
    pem: key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
  await fill(7);
});
afterAll(async () => {
  await Promise.all([rekor?.close(), svc?.close()]);
});
afterEach(async () => {
  rekor.reset();
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** Unrelated hashedrekord entries, so proofs run through a tree of many leaves. */
async function fill(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const artifact = newArtifact();
    const sig = sign('sha256', artifact, keyed.privateKey);
    await upload(rekor.url, hashedrekordProposal(hex('sha256', artifact), sig, keyed.pem));
  }
}

function source(opts: Partial<RekorSourceOptions> = {}) {
  const s = createRekorSource({ url: rekor.url, retryDelayMs: 10, ...opts });
  opened.push(s);
  return s;
}

const codes = (r: CollectResult) => ({
  evidence: r.evidence.length,
  rejected: r.rejected.map((x) => x.code),
  failures: r.failures.map((x) => x.code),
});

function verifyKeyless(ev: Evidence, artifact: Buffer) {
  return verifyAttestation(ev.bytes, {
    trust,
    identities: [DEFAULT_IDENTITY],
    subject: { digest: digest(artifact) },
  });
}

describe('rekor source against a local rekor v1 log', () => {
  it('finds an intoto entry by subject digest and rebuilds a bundle whose inclusion proof verifies', async () => {
    const artifact = newArtifact();
    const { id } = await upload(
      rekor.url,
      intotoProposal(signEnvelope(keyless, statement(artifact)), keyless.pem),
    );
    await fill(3);
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
    const ev = result.evidence[0]!;
    expect(ev.source).toBe(`rekor:${rekor.url}#${id}`);
    expect(ev.id).toBe(hex('sha256', ev.bytes));
    const bundle = JSON.parse(ev.bytes.toString());
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.2');
    const proof = bundle.verificationMaterial.tlogEntries[0].inclusionProof;
    expect(Number(proof.treeSize)).toBeGreaterThan(10);
    expect(proof.hashes.length).toBeGreaterThan(2);
    const att = verifyKeyless(ev, artifact);
    expect(att.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(att.signer.identity).toBe(DEFAULT_IDENTITY.san);
    expect(att.logEntries[0]).toMatchObject({ kind: 'intoto', version: '0.0.2' });
  });

  it('rebuilds a key-signed intoto entry, found by its sha512 subject digest', async () => {
    const artifact = newArtifact();
    await upload(rekor.url, intotoProposal(signEnvelope(keyed, statement(artifact)), keyed.pem));
    const result = await source().collect({ subject: digest(artifact, 'sha512') });
    expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
    const att = verifyAttestation(result.evidence[0]!.bytes, {
      trust,
      keys: [{ pem: keyed.pem }],
      subject: { digest: digest(artifact, 'sha512') },
    });
    expect(att.signer.kind).toBe('key');
    // one key id form everywhere: cosign's hint (base64 SHA-256 of the DER SPKI)
    const spki = createPublicKey(keyed.pem).export({ format: 'der', type: 'spki' });
    expect(att.signer.keyId).toBe(Buffer.from(hex('sha256', spki), 'hex').toString('base64'));
  });

  it('rejects attestation data that does not hash to the logged payload hash', async () => {
    const artifact = newArtifact();
    const { id } = await upload(
      rekor.url,
      intotoProposal(signEnvelope(keyless, statement(artifact)), keyless.pem),
    );
    rekor.faults.corruptAttestation = true;
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({
      evidence: 0,
      rejected: ['EVIDENCE_DATA_MISMATCH'],
      failures: [],
    });
    expect(result.rejected[0]!.id).toBe(id.slice(-64));
  });

  it('an intoto entry without attestation data is content missing, unless another source has the envelope', async () => {
    const artifact = newArtifact();
    const env = signEnvelope(keyless, statement(artifact));
    await upload(rekor.url, intotoProposal(env, keyless.pem));
    rekor.faults.omitAttestation = true;
    const bare = await source().collect({ subject: digest(artifact) });
    expect(codes(bare)).toEqual({
      evidence: 0,
      rejected: ['EVIDENCE_CONTENT_MISSING'],
      failures: [],
    });
    const joined = await source({ envelopes: () => [envelopeEvidence(env)] }).collect({
      subject: digest(artifact),
    });
    expect(codes(joined)).toEqual({ evidence: 1, rejected: [], failures: [] });
    expect(verifyKeyless(joined.evidence[0]!, artifact).predicateType).toBe(
      'https://slsa.dev/provenance/v1',
    );
  });

  it('joins a dsse entry with the envelope of a bundle another source found', async () => {
    const artifact = newArtifact();
    const env = signEnvelope(keyless, statement(artifact));
    await upload(rekor.url, dsseProposal(env, keyless.pem));
    const other = signEnvelope(keyless, statement(newArtifact()));
    const envelopes = async () => [
      envelopeEvidence(other, 'bundle'),
      envelopeEvidence(env, 'bundle'),
    ];
    const result = await source({ envelopes }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
    const att = verifyKeyless(result.evidence[0]!, artifact);
    expect(att.logEntries[0]).toMatchObject({ kind: 'dsse', version: '0.0.1' });
  });

  it('a dsse entry whose envelope nobody supplied is content missing, named by id and payload hash', async () => {
    const artifact = newArtifact();
    const env = signEnvelope(keyed, statement(artifact));
    const { id } = await upload(rekor.url, dsseProposal(env, keyed.pem));
    // Same payload, another signature: not the logged envelope.
    const resigned = signEnvelope(
      { ...keyed, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
      Buffer.from(env.payload, 'base64'),
    );
    const result = await source({ envelopes: () => [envelopeEvidence(resigned)] }).collect({
      subject: digest(artifact),
    });
    expect(codes(result)).toEqual({
      evidence: 0,
      rejected: ['EVIDENCE_CONTENT_MISSING'],
      failures: [],
    });
    const payloadHash = hex('sha256', Buffer.from(env.payload, 'base64'));
    expect(result.rejected[0]!.message).toContain(id);
    expect(result.rejected[0]!.message).toContain(payloadHash);
  });

  it('envelopes that cannot be had make a dsse entry content missing, saying why', async () => {
    const artifact = newArtifact();
    await upload(rekor.url, dsseProposal(signEnvelope(keyed, statement(artifact)), keyed.pem));
    const envelopes = () => Promise.reject(new Error('store offline'));
    const result = await source({ envelopes }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({
      evidence: 0,
      rejected: ['EVIDENCE_CONTENT_MISSING'],
      failures: [],
    });
    expect(result.rejected[0]!.message).toMatch(/store offline/);
  });

  it('a hashedrekord entry is not an attestation', async () => {
    const artifact = newArtifact();
    const sig = sign('sha256', artifact, keyed.privateKey);
    await upload(rekor.url, hashedrekordProposal(hex('sha256', artifact), sig, keyed.pem));
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({
      evidence: 0,
      rejected: ['EVIDENCE_NOT_ATTESTATION'],
      failures: [],
    });
    expect(result.rejected[0]!.message).toMatch(/not an attestation/);
  });

  it('works over a caller-supplied client and dispatcher, and leaves them open', async () => {
    const artifact = newArtifact();
    await upload(
      rekor.url,
      intotoProposal(signEnvelope(keyless, statement(artifact)), keyless.pem),
    );
    let dispatched = 0;
    class CountingAgent extends Agent {
      override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
        dispatched++;
        return super.dispatch(options, handler);
      }
    }
    const agent = new CountingAgent();
    const http = createHttpClient({ dispatcher: agent });
    try {
      const s = source({ http });
      const result = await s.collect({ subject: digest(artifact) });
      expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
      expect(dispatched).toBe(2);
      await s.close();
      // The source's close is not the shared client's: it still answers.
      await expect(http.getJSON(`${rekor.url}/api/v1/log`)).resolves.toMatchObject({
        treeSize: expect.any(Number),
      });
    } finally {
      await http.close();
      await agent.close();
    }
  });

  it('nothing indexed is an empty result, not a failure', async () => {
    const result = await source().collect({ subject: digest(newArtifact()) });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: [] });
  });
});

describe('rekor source over an unreliable log', () => {
  let artifact: Buffer;
  beforeAll(async () => {
    artifact = newArtifact();
    await upload(
      rekor.url,
      intotoProposal(signEnvelope(keyless, statement(artifact)), keyless.pem),
    );
    rekor.reset();
  });

  it('retries 503 twice, then finds the evidence', async () => {
    rekor.faults.failNext = { count: 2 };
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
    expect(rekor.requests.map((r) => r.path)).toEqual([
      ...Array(3).fill('/api/v1/index/retrieve'),
      '/api/v1/log/entries/retrieve',
    ]);
  });

  it('honours Retry-After on 429', async () => {
    rekor.faults.failNext = { count: 1, status: 429, retryAfter: '1' };
    const started = Date.now();
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result).evidence).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('503 forever is a failure with no evidence, after bounded retries', async () => {
    rekor.faults.failNext = { count: 1_000 };
    const result = await source({ retries: 2 }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_BAD_RESPONSE'] });
    expect(result.failures[0]!.message).toMatch(/http 503/);
    expect(rekor.requests).toHaveLength(3);
  });

  it('keeps its own retry policy over a shared client with other defaults', async () => {
    rekor.faults.failNext = { count: 1_000 };
    const http = createHttpClient({ retries: 5, backoffMs: 1 });
    try {
      const result = await source({ http }).collect({ subject: digest(artifact) });
      expect(codes(result).failures).toEqual(['SOURCE_BAD_RESPONSE']);
      expect(rekor.requests).toHaveLength(3);
    } finally {
      await http.close();
    }
  });

  it('a failed entry fetch after a successful search is a failure, not an empty result', async () => {
    rekor.faults = { only: '/api/v1/log/entries', failNext: { count: 1_000 } };
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_BAD_RESPONSE'] });
    expect(result.failures[0]!.message).toMatch(/^1 entry not fetched: .*http 503/);
  });

  it('a slow log is a timeout', async () => {
    rekor.faults.delayMs = 1_000;
    const result = await source({ timeoutMs: 150 }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_TIMEOUT'] });
  });

  it('an oversize response is refused while it streams', async () => {
    rekor.faults.oversizeBytes = 4 * 1024 * 1024;
    const result = await source({ maxResponseBytes: 64 * 1024 }).collect({
      subject: digest(artifact),
    });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_TOO_LARGE'] });
  });

  it('a response that is not json is a bad response', async () => {
    rekor.faults.malformed = true;
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_BAD_RESPONSE'] });
  });

  it('a refused connection is unreachable', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const result = await source({ url: `http://127.0.0.1:${port}`, retries: 0 }).collect({
      subject: digest(artifact),
    });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_UNREACHABLE'] });
  });

  it('an aborted collection is a failure, not an empty result', async () => {
    rekor.faults.delayMs = 1_000;
    const result = await source().collect({
      subject: digest(artifact),
      signal: AbortSignal.timeout(100),
    });
    expect(codes(result)).toEqual({ evidence: 0, rejected: [], failures: ['SOURCE_TIMEOUT'] });
  });

  it('falls back to GET per entry when the log has no entries/retrieve', async () => {
    rekor.faults.retrieveUnsupported = true;
    const result = await source().collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 1, rejected: [], failures: [] });
    expect(
      rekor.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{80}$/, 'ID')}`),
    ).toEqual([
      'POST /api/v1/index/retrieve',
      'POST /api/v1/log/entries/retrieve',
      'GET /api/v1/log/entries/ID',
    ]);
    verifyKeyless(result.evidence[0]!, artifact);
  });
});

describe('rekor source with many entries', () => {
  const artifact = newArtifact();
  beforeAll(async () => {
    for (let i = 0; i < 25; i++) {
      await upload(
        rekor.url,
        intotoProposal(signEnvelope(keyless, statement(artifact, i)), keyless.pem),
      );
    }
    rekor.reset();
  });

  it('fetches 25 entries in batches of at most 10 ids, at most `concurrency` at once', async () => {
    rekor.faults.delayMs = 50;
    const result = await source({ concurrency: 2 }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({ evidence: 25, rejected: [], failures: [] });
    const batches = rekor.requests
      .filter((r) => r.path === '/api/v1/log/entries/retrieve')
      .map((r) => JSON.parse(r.body).entryUUIDs.length);
    expect(batches.sort()).toEqual([10, 10, 5]);
    expect(rekor.maxInFlight).toBeLessThanOrEqual(2);
    const predicates = result.evidence.map(
      (ev) => (verifyKeyless(ev, artifact).predicate as any).buildDefinition.n,
    );
    expect(new Set(predicates).size).toBe(25);
  });

  it('more entry ids than maxEntries is a failure, not a truncation', async () => {
    const result = await source({ maxEntries: 24 }).collect({ subject: digest(artifact) });
    expect(codes(result)).toEqual({
      evidence: 0,
      rejected: [],
      failures: ['SOURCE_LIMIT_EXCEEDED'],
    });
    expect(rekor.requests.map((r) => r.path)).toEqual(['/api/v1/index/retrieve']);
  });
});

describe('the local log', () => {
  it('gives RFC 6962 inclusion proofs @sigstore/verify accepts for every index of every size up to 33', () => {
    const tree = new MerkleTree();
    for (let size = 1; size <= 33; size++) {
      tree.append(Buffer.from(`leaf ${size - 1}`));
      for (let i = 0; i < size; i++) {
        const entry = {
          canonicalizedBody: Buffer.from(`leaf ${i}`),
          inclusionProof: { logIndex: String(i), hashes: tree.proof(i, 0, size) },
        };
        const checkpoint = { logSize: BigInt(size), logHash: tree.root(0, size) };
        verifyMerkleInclusion(entry as any, checkpoint as any);
      }
    }
  });

  it('serves its tree state and public key', async () => {
    const info = (await (await fetch(`${rekor.url}/api/v1/log`)).json()) as any;
    expect(info.treeSize).toBeGreaterThan(10);
    expect(info.signedTreeHead).toContain(`\n${info.treeSize}\n`);
    const pem = await (await fetch(`${rekor.url}/api/v1/log/publicKey`)).text();
    expect(pem).toBe(rekor.publicKeyPem);
  });
});

describe('replayed real rekor v1 responses', () => {
  const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, 'rekor', name), 'utf8'));
  const production = fixture('rekor-log-entry.TestEntry.extracted.json');
  const leafOf = (body: string) =>
    createHash('sha256')
      .update(Buffer.from([0]))
      .update(Buffer.from(body, 'base64'))
      .digest('hex');
  // Production ids are the tree id (2605736670972794746) in 16 hex digits, then the leaf hash.
  const productionId = '24296fb24b8ad77a' + leafOf(production.body);
  const v2 = fixture('entry-v2.json');
  const v2Id = leafOf(v2.canonicalizedBody);
  const staging = fixture('entry.json');
  const stagingNoProof = fixture('entry-no-inclusion-proof.json');
  const jar = fixture('jar-entry.json');
  const TEST_DIGEST = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
  const index: Record<string, string[]> = {
    [TEST_DIGEST]: [productionId],
    'sha256:47c1db9fb5fe7ff66e3d7c15b2ca5d3a046ee8f4aa043dedd317e46b321c4390': Object.keys(staging),
    'sha256:1124ca085d897e8c05b9d2245946e9237c7fd87ad0e9da29e6262c5c3731f958': Object.keys(jar),
    'sha256:1307990e6ba5ca145eb35e99182a9bec46531bc54ddf656a602c780fa0240dee':
      Object.keys(stagingNoProof),
    // a Rekor v2 entry (bundle form) where a v1 entry is expected, under its artifact's digest
    [`sha256:${Buffer.from('Lk1GoUgegnTpSCKlwghaJc042pAUqWag4nBWaPnRP4M=', 'base64').toString('hex')}`]:
      [v2Id],
  };
  let replay: Awaited<ReturnType<typeof startReplayServer>>;
  beforeAll(async () => {
    replay = await startReplayServer(
      [{ [productionId]: production }, staging, stagingNoProof, jar, { [v2Id]: v2 }],
      index,
    );
  });
  afterAll(() => replay?.close());

  const collect = (key: string) => {
    const [algorithm, h] = key.split(':') as ['sha256', string];
    return source({ url: replay.url }).collect({ subject: { algorithm, hex: h } });
  };

  it('classifies each real entry: hashedrekord is not an attestation, jar and v2 shapes are malformed', async () => {
    const results = await Promise.all(Object.keys(index).map(collect));
    expect(results.map(codes)).toEqual([
      { evidence: 0, rejected: ['EVIDENCE_NOT_ATTESTATION'], failures: [] },
      { evidence: 0, rejected: ['EVIDENCE_NOT_ATTESTATION'], failures: [] },
      { evidence: 0, rejected: ['EVIDENCE_MALFORMED'], failures: [] },
      { evidence: 0, rejected: ['EVIDENCE_NOT_ATTESTATION'], failures: [] },
      { evidence: 0, rejected: ['EVIDENCE_MALFORMED'], failures: [] },
    ]);
  });

  /** Rebuilds a bundle from the entry as the replay server serves it, through the source's parser. */
  async function rebuilt(id: string) {
    const res = await fetch(`${replay.url}/api/v1/log/entries/${id}`);
    const [uuid, raw] = Object.entries((await res.json()) as Record<string, unknown>)[0]!;
    const entry = parseEntry(uuid, raw);
    return hashedRekordBundle(entry, decodeBody(entry));
  }

  /** The tlog half of verification: SET, checkpoint signature, Merkle path, body vs signature. */
  function verifyTLog(json: Record<string, unknown>, root: Trust, artifact: Buffer) {
    const { bundle } = parseBundle(json);
    const entity = toSignedEntity(bundle, artifact);
    const tlogEntry = bundle.verificationMaterial.tlogEntries[0]!;
    if (bundle.content.$case !== 'messageSignature')
      throw new Error('expected a message signature');
    const content = messageContent(bundle.content.messageSignature, { bytes: artifact });
    verifyTLogInclusion(tlogEntry, root.material.tlogs);
    verifyTLogBody(tlogEntry, content);
    if (entity.key.$case !== 'certificate') throw new Error('expected a certificate');
    const key = createPublicKey({
      key: entity.key.certificate.publicKey,
      format: 'der',
      type: 'spki',
    });
    expect(content.verifySignature(key)).toBe(true);
  }

  it('the production entry (logIndex 59674396) verifies its SET and inclusion proof against the public-good root', async () => {
    const json = await rebuilt(productionId);
    expect(json.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.2');
    verifyTLog(json, loadTrustedRoot(), Buffer.from('test'));
    const tampered = structuredClone(json) as any;
    const proof = tampered.verificationMaterial.tlogEntries[0].inclusionProof;
    proof.hashes[3] = Buffer.alloc(32, 1).toString('base64');
    expect(() => verifyTLog(tampered, loadTrustedRoot(), Buffer.from('test'))).toThrow(/root hash/);
    const forged = structuredClone(json) as any;
    forged.verificationMaterial.tlogEntries[0].integratedTime = '1703705040';
    expect(() => verifyTLog(forged, loadTrustedRoot(), Buffer.from('test'))).toThrow(
      /inclusion promise/,
    );
  });

  it('the staging entries verify against the staging root and its rekor.pub', async () => {
    const stagingRoot = loadTrustedRoot(join(FIXTURES, 'rekor', 'staging.trusted_root.json'));
    const pub = createPublicKey(readFileSync(join(FIXTURES, 'rekor', 'rekor.pub')));
    const logId = hex('sha256', pub.export({ format: 'der', type: 'spki' }));
    for (const entry of [staging, stagingNoProof]) {
      const [id, value] = Object.entries(entry)[0]! as [string, any];
      expect(value.logID).toBe(logId);
      const json = await rebuilt(id);
      const proofless = !value.verification.inclusionProof;
      expect(json.mediaType).toMatch(proofless ? /version=0\.1$/ : /version=0\.2$/);
      // The artifacts are unknown: check the log's promises and proofs, not the body's digest.
      const { bundle } = parseBundle(json);
      verifyTLogInclusion(bundle.verificationMaterial.tlogEntries[0]!, stagingRoot.material.tlogs);
    }
  });

  it('an entry whose body does not hash to its id is malformed', async () => {
    const forged = structuredClone(production);
    forged.body = staging[Object.keys(staging)[0]!].body;
    const server = await startReplayServer([{ [productionId]: forged }], {
      [TEST_DIGEST]: [productionId],
    });
    try {
      const result = await source({ url: server.url }).collect({
        subject: { algorithm: 'sha256', hex: TEST_DIGEST.slice(7) },
      });
      expect(codes(result)).toEqual({
        evidence: 0,
        rejected: ['EVIDENCE_MALFORMED'],
        failures: [],
      });
      expect(result.rejected[0]!.message).toMatch(/does not hash to its id/);
    } finally {
      await server.close();
    }
  });
});
