import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPEM } from '../support/local-fulcio.js';
import { preAuthEncoding } from '../support/local-rekor.js';
import { DEFAULT_IDENTITY, IN_TOTO_PAYLOAD_TYPE } from '../support/mint.js';
import {
  hashedrekordProposal,
  intotoProposal,
  startRekorServer,
  startReplayServer,
  upload,
  type RekorServer,
  type ReplayServer,
} from '../support/rekor-server.js';
import { requestCertificate } from '../support/sigstore-client.js';
import { reportFault } from './report.js';
import {
  check,
  closedPortUrl,
  expectCouldNotDecide,
  hex,
  killChildren,
  provenanceStatement,
  readLedger,
  UNREACHABLE,
  prefetch,
  expectInTime,
  type Run,
  startFaulty,
  startFixture,
  writeConfig,
  type Faulty,
  type Fixture,
  type Misbehaviour,
} from './support.js';

/**
 * A Rekor v1 log and an OCI registry go wrong under a real `gate check`. The log holds a real
 * intoto entry (a keyless statement of provenance about the subject, in a tree of several
 * leaves); served as recorded it allows the subject. Served with its inclusion proof edited it
 * must not: the evidence is rejected and the subject denied. A log or a registry that is down,
 * hangs, answers garbage or storms 429 makes the gate unable to decide within its deadline.
 */
const APP = hex('faults: an app the log has provenance for');

let rekor: RekorServer;
let fx: Fixture;
let entryId: string;
let entry: Record<string, unknown>;
const servers: Array<Faulty | ReplayServer> = [];

beforeAll(async () => {
  rekor = await startRekorServer();
  fx = await startFixture([rekor.trustedRootTlog]);
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = toPEM(await requestCertificate(fx.svc, key, DEFAULT_IDENTITY));
  const payload = Buffer.from(JSON.stringify(provenanceStatement(APP)));
  const sig = sign('sha256', preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload), key.privateKey);
  const envelope = {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: '', sig: sig.toString('base64') }],
  };
  // leaves before and after, so the entry's proof has hashes on both sides
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const otherPem = other.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const filler = async (n: number) => {
    const artifact = Buffer.from(`filler ${n}`);
    const s = sign('sha256', artifact, other.privateKey);
    await upload(rekor.url, hashedrekordProposal(hex(`filler ${n}`), s, otherPem));
  };
  for (const n of [1, 2, 3]) await filler(n);
  entryId = (await upload(rekor.url, intotoProposal(envelope, pem))).id;
  for (const n of [4, 5, 6, 7]) await filler(n);
  const res = await fetch(`${rekor.url}/api/v1/log/entries/${entryId}`);
  entry = ((await res.json()) as Record<string, Record<string, unknown>>)[entryId]!;
});
afterAll(async () => {
  killChildren();
  await Promise.all(servers.map((s) => s.close()));
  await rekor?.close();
  await fx?.close();
});

/** The recorded entry, edited, served as a log whose index names it under the subject. */
async function logServing(edit: (proof: Proof) => void): Promise<string> {
  const value = structuredClone(entry) as { verification: { inclusionProof: Proof } };
  edit(value.verification.inclusionProof);
  const replay = await startReplayServer([{ [entryId]: value }], {
    [`sha256:${APP}`]: [entryId],
  });
  servers.push(replay);
  return replay.url;
}

interface Proof {
  logIndex: number;
  treeSize: number;
  rootHash: string;
  hashes: string[];
  checkpoint: string;
}

const flip = (h: string) => `${h[0] === '0' ? '1' : '0'}${h.slice(1)}`;
const logConfig = (name: string, url: string) =>
  writeConfig(fx, fx.dir, `${name}.yaml`, { sources: { rekor: { url } } });

describe('gate check against a Rekor log', () => {
  it('allows the subject when the entry is served as the log recorded it', async () => {
    const url = await logServing(() => {});
    const run = await check(logConfig('rekor-recorded', url), APP);
    expect(run.stderr).toBe('');
    expect([run.code, run.decision?.outcome]).toEqual([0, 'allow']);
    expect(run.decision!.evidence).toEqual([
      expect.objectContaining({ status: 'verified', source: `rekor:${url}#${entryId}` }),
    ]);
    const proof = (entry as { verification: { inclusionProof: Proof } }).verification
      .inclusionProof;
    expect(proof.hashes.length).toBeGreaterThanOrEqual(2);
  });

  const inconsistent: Array<[string, (p: Proof) => void]> = [
    ['a proof hash flipped', (p) => (p.hashes[1] = flip(p.hashes[1]!))],
    ['a root hash other than the proof computes', (p) => (p.rootHash = flip(p.rootHash))],
    ['the proof claimed for another leaf index', (p) => (p.logIndex += 1)],
    ['a tree size the proof does not fit', (p) => (p.treeSize += 5)],
    ['a proof hash left out', (p) => void p.hashes.pop()],
  ];
  let proofRuns: Map<string, Promise<{ url: string; config: string; run: Run }>>;
  beforeAll(() => {
    proofRuns = prefetch(
      inconsistent.map(([what]) => what),
      1,
      async (what) => {
        const url = await logServing(inconsistent.find(([w]) => w === what)![1]);
        const config = logConfig(`rekor-${what.replace(/\W+/g, '-')}`, url);
        return { url, config, run: await check(config, APP) };
      },
    );
  });
  for (const [what] of inconsistent) {
    it(`rejects an inclusion proof with ${what}: a deny naming the log entry, never an allow`, async () => {
      const { url, config, run } = await proofRuns.get(what)!;
      const rejected = run.decision?.evidence.find((e) => e.status === 'rejected');
      reportFault(
        `check: rekor inclusion proof with ${what}`,
        run.decision?.outcome ?? `exit ${run.code}`,
        rejected && 'code' in rejected ? String(rejected.code) : undefined,
        run.ms,
      );
      expect(run.stderr).toBe('');
      expect([run.code, run.decision?.outcome, run.decision?.allow]).toEqual([1, 'deny', false]);
      expect(run.decision!.violations.map((v) => v.id)).toEqual(['test.provenance']);
      expect(run.decision!.evidence).toEqual([
        expect.objectContaining({
          status: 'rejected',
          source: `rekor:${url}#${entryId}`,
          code: expect.stringMatching(/^TLOG_/),
          message: expect.stringMatching(/\S/),
        }),
      ]);
      expectInTime(run);
      expect(await readLedger(config)).toMatchObject({ ids: [run.decision!.id], ok: true });
    });
  }
});

async function faultyUrl(mode: Misbehaviour | 'down'): Promise<string> {
  if (mode === 'down') return closedPortUrl();
  const s = await startFaulty(mode);
  servers.push(s);
  return s.url;
}

/**
 * The codes each fault may come to, by source. A refused or dropped connection is retried with
 * backoff: when the retries are spent before the deadline it is SOURCE_UNREACHABLE, when the
 * deadline comes first SOURCE_TIMEOUT (the registry client retries longer than the log's).
 */
const FAULTS: Array<{ mode: Misbehaviour | 'down'; rekor: string[]; oci?: string[] }> = [
  { mode: 'down', rekor: UNREACHABLE, oci: UNREACHABLE },
  { mode: 'hang', rekor: ['SOURCE_TIMEOUT'], oci: ['SOURCE_TIMEOUT'] },
  { mode: 'garbage', rekor: ['SOURCE_BAD_RESPONSE'], oci: ['OCI_MANIFEST_INVALID'] },
  { mode: 'wrong-json', rekor: ['SOURCE_BAD_RESPONSE'] },
  { mode: 'storm', rekor: ['SOURCE_TIMEOUT'], oci: ['SOURCE_TIMEOUT'] },
];
// (drip and a truncated body go through the same HTTP client: store.test.ts has them)
const OCI_FAULTS = FAULTS.filter((f) => f.oci !== undefined);

describe('gate check against a Rekor log that', () => {
  let runs: Map<string, Promise<{ url: string; config: string; run: Run }>>;
  beforeAll(() => {
    runs = prefetch(
      FAULTS.map((f) => f.mode),
      1,
      async (mode) => {
        const url = await faultyUrl(mode);
        const config = logConfig(`rekor-${mode}`, url);
        return { url, config, run: await check(config, APP) };
      },
    );
  });
  for (const { mode, rekor: codes } of FAULTS) {
    it(`is ${mode}: could not decide (${codes.join(' or ')}) within the deadline, naming the log`, async () => {
      const { url, config, run } = await runs.get(mode)!;
      reportFault(
        `check: rekor ${mode}`,
        run.decision?.outcome ?? `exit ${run.code}`,
        run.decision?.error?.code,
        run.ms,
      );
      expectCouldNotDecide(run, codes, `rekor:${url}`);
      expect(await readLedger(config)).toMatchObject({ ids: [run.decision!.id], ok: true });
    });
  }
});

describe('gate check against an OCI registry that', () => {
  let runs: Map<string, Promise<{ repository: string; config: string; run: Run }>>;
  beforeAll(() => {
    runs = prefetch(
      OCI_FAULTS.map((f) => f.mode),
      1,
      async (mode) => {
        const url = await faultyUrl(mode);
        const repository = `${new URL(url).host}/attestations`;
        const config = writeConfig(fx, fx.dir, `oci-${mode}.yaml`, {
          sources: { oci: { repositories: [repository] } },
        });
        return { repository, config, run: await check(config, APP) };
      },
    );
  });
  for (const { mode, oci } of OCI_FAULTS) {
    const codes = oci!;
    it(`is ${mode}: could not decide (${codes.join(' or ')}) within the deadline, naming the registry`, async () => {
      const { repository, config, run } = await runs.get(mode)!;
      reportFault(
        `check: oci registry ${mode}`,
        run.decision?.outcome ?? `exit ${run.code}`,
        run.decision?.error?.code,
        run.ms,
      );
      expectCouldNotDecide(run, codes, `oci:${repository}#referrers-api`);
      expect(await readLedger(config)).toMatchObject({ ids: [run.decision!.id], ok: true });
    });
  }
});
