import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { IdentityRule } from '../../src/verify/types.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { flipByte, mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { hex, statementAbout } from './gate-support.js';
import { expectRefused } from './report.js';

/**
 * Attack corpus: the transparency log. Entries that belong to another bundle or another log,
 * proofs and checkpoints edited, promises forged, a threshold met twice by one entry, a bundle
 * logged by another Sigstore instance. Each is a real entry from the local Rekor, then changed.
 */
const ARTIFACT = Buffer.from('tlog attack artifact\n');
const A = hex(ARTIFACT);
const ID: IdentityRule = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };
const STATEMENT = statementAbout([A]);
const ENTRY = 'verificationMaterial.tlogEntries.0';

let svc: LocalSigstore;
let other: LocalSigstore;
let trust: Trust;
let v3: Minted; // proof + checkpoint + SET
let v1: Minted; // SET alone
let another: Minted; // another bundle of the same log
let foreign: Minted; // a bundle of another instance's log

const check = (bundle: unknown, o: { tlogThreshold?: number; t?: Trust } = {}) =>
  verifyAttestation(bundle, {
    trust: o.t ?? trust,
    identities: [ID],
    subject: { bytes: ARTIFACT },
    ...(o.tlogThreshold !== undefined ? { tlogThreshold: o.tlogThreshold } : {}),
  });

beforeAll(async () => {
  [svc, other] = await Promise.all([startLocalSigstore(), startLocalSigstore()]);
  trust = trustFromJSON(svc.trustedRoot, 'local', 'local');
  const keyless = { statement: STATEMENT, signer: 'keyless' as const };
  [v3, v1, another, foreign] = await Promise.all([
    mintDSSEBundle(svc, { ...keyless, version: '0.3' }),
    mintDSSEBundle(svc, { ...keyless, version: '0.1' }),
    mintDSSEBundle(svc, { ...keyless, version: '0.3', statement: statementAbout([A, hex('x')]) }),
    mintDSSEBundle(other, { ...keyless, version: '0.3' }),
  ]);
  // the unchanged bundles verify, so each refusal below is the change's doing
  for (const m of [v3, v1, another]) expect(check(m.bundle).logEntries).toHaveLength(1);
});
afterAll(() => Promise.all([svc?.close(), other?.close()]));

describe('entries that are not this bundle', () => {
  it('a log entry that does not match the bundle is TLOG_BODY_MISMATCH (CVE-2022-23649)', async () => {
    const swapped = mutate(
      v3.bundle,
      'verificationMaterial.tlogEntries',
      () => another.bundle.verificationMaterial.tlogEntries,
    );
    await expectRefused(
      'log entry of another bundle',
      'CVE-2022-23649',
      () => check(swapped),
      'TLOG_BODY_MISMATCH',
    );
    const body = mutate(
      v3.bundle,
      `${ENTRY}.canonicalizedBody`,
      () => another.bundle.verificationMaterial.tlogEntries[0]!.canonicalizedBody,
    );
    await expectRefused(
      'log entry body of another bundle',
      'CVE-2022-23649',
      () => check(body),
      'TLOG_INVALID',
    );
  });

  it('a bundle claimed to be logged but not is refused (CVE-2022-36056)', async () => {
    const unlogged = mutate(v3.bundle, 'verificationMaterial.tlogEntries', () => []);
    await expectRefused(
      'no log entry at all',
      'CVE-2022-36056',
      () => check(unlogged),
      'TIMESTAMP_INVALID',
    );
    // the entry kept but neither proof nor promise: nothing says the log has it
    const unproven = mutate(
      mutate(v3.bundle, `${ENTRY}.inclusionProof`, () => undefined),
      `${ENTRY}.inclusionPromise`,
      () => undefined,
    );
    await expectRefused(
      'log entry without proof or promise',
      'CVE-2022-36056',
      () => check(unproven),
      'BUNDLE_INVALID',
    );
    // an entry with a promise signed by a key the root does not hold
    const forgedPromise = mutate(
      v1.bundle,
      `${ENTRY}.inclusionPromise.signedEntryTimestamp`,
      () =>
        foreign.bundle.verificationMaterial.tlogEntries[0]!.inclusionPromise!.signedEntryTimestamp,
    );
    await expectRefused(
      'promise signed by another log',
      'CVE-2022-36056',
      () => check(forgedPromise),
      'TLOG_INVALID',
    );
  });

  it('a checkpoint from another log is TLOG_INVALID', async () => {
    const cp = foreign.bundle.verificationMaterial.tlogEntries[0]!.inclusionProof!.checkpoint;
    const swapped = mutate(v3.bundle, `${ENTRY}.inclusionProof.checkpoint`, () => cp);
    await expectRefused(
      'checkpoint from another log',
      undefined,
      () => check(swapped),
      'TLOG_INVALID',
    );
  });

  it('a bundle from another instance is refused, keyless and key-signed', async () => {
    await expectRefused(
      'bundle from another instance (keyless)',
      undefined,
      () => check(foreign.bundle),
      'CERTIFICATE_INVALID',
    );
    // signed by a trusted key, but logged in a log this root does not know
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const k = await mintDSSEBundle(other, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'key',
      privateKey: key.privateKey,
    });
    await expectRefused(
      'bundle from another instance (key-signed, foreign log)',
      undefined,
      () =>
        verifyAttestation(k.bundle, {
          trust,
          keys: [{ pem: k.publicKeyPem! }],
          subject: { bytes: ARTIFACT },
        }),
      'TLOG_INVALID',
    );
  });
});

describe('proofs, hashes, checkpoints and promises', () => {
  it('a bad inclusion proof is TLOG_INVALID', async () => {
    // the local log holds one entry per tree, so give the proof a sibling it does not have
    const bad = mutate(v3.bundle, `${ENTRY}.inclusionProof.hashes`, (h) => [
      ...((h as string[] | undefined) ?? []),
      Buffer.alloc(32, 7).toString('base64'),
    ]);
    await expectRefused('bad inclusion proof', undefined, () => check(bad), 'TLOG_INVALID');
    const index = mutate(v3.bundle, `${ENTRY}.inclusionProof.logIndex`, (i) =>
      String(Number(i ?? 0) + 1),
    );
    await expectRefused(
      'inclusion proof index past the tree',
      undefined,
      () => check(index),
      'TLOG_INVALID',
    );
  });

  it('a corrupted hash is refused: root hash, body, and base64 that is not', async () => {
    const root = mutate(v3.bundle, `${ENTRY}.inclusionProof.rootHash`, (h) =>
      flipByte(h as string),
    );
    await expectRefused('corrupted root hash', undefined, () => check(root), 'TLOG_INVALID');
    const body = mutate(v3.bundle, `${ENTRY}.canonicalizedBody`, (b) => flipByte(b as string, 3));
    await expectRefused(
      'corrupted canonicalized body',
      undefined,
      () => check(body),
      'TLOG_INVALID',
    );
  });

  it('a wrong checkpoint root is TLOG_INVALID', async () => {
    const wrong = mutate(v3.bundle, `${ENTRY}.inclusionProof.checkpoint.envelope`, (e) => {
      const lines = String(e).split('\n');
      lines[2] = Buffer.alloc(32, 9).toString('base64'); // origin, size, root hash, ...
      return lines.join('\n');
    });
    await expectRefused('wrong checkpoint root', undefined, () => check(wrong), 'TLOG_INVALID');
  });

  it('the merkle edge case index ^ (size - 1) == 0: the last leaf proves nothing extra', async () => {
    const proof = v3.bundle.verificationMaterial.tlogEntries[0]!.inclusionProof!;
    // the entry is the tree's last leaf (index == size - 1), where a verifier that stops early
    // would accept any trailing hashes or any root
    expect((Number(proof.logIndex) ^ (Number(proof.treeSize) - 1)) === 0).toBe(true);
    const trailing = mutate(v3.bundle, `${ENTRY}.inclusionProof.hashes`, (h) => [
      ...((h as string[] | undefined) ?? []),
      proof.rootHash,
    ]);
    await expectRefused(
      'merkle edge case: trailing hash at the last leaf',
      undefined,
      () => check(trailing),
      'TLOG_INVALID',
    );
    const grown = mutate(v3.bundle, `${ENTRY}.inclusionProof.treeSize`, (s) =>
      String(Number(s) + 1),
    );
    await expectRefused(
      'merkle edge case: size grown past the last leaf',
      undefined,
      () => check(grown),
      'TLOG_INVALID',
    );
  });

  it('an invalid SET is TLOG_INVALID', async () => {
    const flipped = mutate(v1.bundle, `${ENTRY}.inclusionPromise.signedEntryTimestamp`, (s) =>
      flipByte(s as string),
    );
    await expectRefused('invalid SET', undefined, () => check(flipped), 'TLOG_INVALID');
  });

  it('a threshold is not met by duplicate entries of one log', async () => {
    const twice = mutate(v3.bundle, 'verificationMaterial.tlogEntries', (e) => [
      ...(e as unknown[]),
      ...(e as unknown[]),
    ]);
    await expectRefused(
      'tlog threshold met by duplicate entries',
      undefined,
      () => check(twice, { tlogThreshold: 2 }),
      'TLOG_INVALID',
      /distinct logs/,
    );
    // without inclusion promises (as Rekor v2 entries come) the duplicates are not duplicate
    // timestamps either: the time comes from an rfc 3161 timestamp. The local log proves each
    // entry in a tree of its own, so the entry is moved to index 0 where its proof puts it.
    const stamped = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
      tsa: true,
    });
    const bare = mutate(
      mutate(stamped.bundle, `${ENTRY}.inclusionPromise`, () => undefined),
      `${ENTRY}.logIndex`,
      () => '0',
    );
    expect(check(bare).logEntries).toHaveLength(1);
    const bareTwice = mutate(bare, 'verificationMaterial.tlogEntries', (e) => [
      ...(e as unknown[]),
      ...(e as unknown[]),
    ]);
    await expectRefused(
      'tlog threshold met by duplicate entries (no promises)',
      undefined,
      () => check(bareTwice, { tlogThreshold: 2 }),
      'TLOG_INVALID',
      /distinct logs/,
    );
  });
});
