import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileSource } from '../../src/collect/files.js';
import type { Gate } from '../../src/gate.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { parseBundle } from '../../src/verify/bundle.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import {
  bytesOf,
  evidenceOf,
  gateOver,
  hex,
  requestFor,
  statementAbout,
  tmp,
} from './gate-support.js';
import { expectDecision, expectRefused } from './report.js';

/**
 * Attack corpus: bytes that are not what a bundle should be. Malformed JSON, unknown versions,
 * negative indexes, bad base64, oversized and deeply nested documents, and a flood of
 * attestations; each ends coded, and the gate never reads one as "nothing here".
 */
const ARTIFACT = Buffer.from('parsing attack artifact\n');
const A = hex(ARTIFACT);
const ID = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };

let svc: LocalSigstore;
let trust: Trust;
let good: Minted;
const gates: Gate[] = [];

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'local', 'local');
  good = await mintDSSEBundle(svc, {
    statement: statementAbout([A]),
    version: '0.3',
    signer: 'keyless',
  });
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await svc?.close();
});

const check = (input: unknown) =>
  verifyAttestation(input, { trust, identities: [ID], subject: { bytes: ARTIFACT } });

/** Through the gate beside a valid attestation: the bad one is rejected with `code`. */
async function rejectedByGate(name: string, bad: Buffer, code: string) {
  const g = await gateOver(svc, { evidence: [evidenceOf(bad, 1)] });
  gates.push(g);
  const d = await g.check(requestFor(A));
  const report = d.evidence.find((e) => e.status === 'rejected');
  expectDecision(`${name} (gate)`, undefined, d, 'deny', code, report?.code);
}

describe('documents that are not bundles', () => {
  it('malformed json is INPUT_MALFORMED_JSON', async () => {
    const text = JSON.stringify(good.bundle).slice(0, -10);
    await expectRefused(
      'malformed json',
      undefined,
      () => check(Buffer.from(text)),
      'INPUT_MALFORMED_JSON',
    );
    await rejectedByGate('malformed json', Buffer.from(text), 'INPUT_MALFORMED_JSON');
  });

  it('an unknown bundle version is BUNDLE_UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const mediaType of [
      'application/vnd.dev.sigstore.bundle.v0.4+json',
      'application/vnd.dev.sigstore.bundle+json;version=0.9',
      'application/vnd.dev.sigstore.bundle+json;version=0.3;x=1',
    ]) {
      const b = mutate(good.bundle, 'mediaType', () => mediaType);
      await expectRefused(
        `unknown bundle version ${mediaType}`,
        undefined,
        () => check(b),
        'BUNDLE_UNSUPPORTED_MEDIA_TYPE',
      );
    }
    await rejectedByGate(
      'unknown bundle version',
      bytesOf(
        mutate(good.bundle, 'mediaType', () => 'application/vnd.dev.sigstore.bundle.v0.4+json'),
      ),
      'BUNDLE_UNSUPPORTED_MEDIA_TYPE',
    );
  });

  it('a negative log index is BUNDLE_INVALID', async () => {
    for (const field of [
      'logIndex',
      'inclusionProof.logIndex',
      'inclusionProof.treeSize',
      'integratedTime',
    ]) {
      const b = mutate(good.bundle, `verificationMaterial.tlogEntries.0.${field}`, () => '-1');
      await expectRefused(
        `negative ${field}`,
        undefined,
        () => check(b),
        'BUNDLE_INVALID',
        /non-negative integer/,
      );
    }
  });

  it('bad base64 is BUNDLE_BAD_BASE64, wherever it is', async () => {
    for (const field of [
      'dsseEnvelope.payload',
      'dsseEnvelope.signatures.0.sig',
      'verificationMaterial.certificate.rawBytes',
      'verificationMaterial.tlogEntries.0.canonicalizedBody',
    ]) {
      const b = mutate(
        good.bundle,
        field,
        (v) => `${String(v).slice(0, 8)}!*${String(v).slice(10)}`,
      );
      await expectRefused(`bad base64 in ${field}`, undefined, () => check(b), 'BUNDLE_BAD_BASE64');
    }
  });

  it('an oversized bundle is INPUT_TOO_LARGE, from memory and from a file', async () => {
    const big = mutate(good.bundle, 'verificationMaterial.padding', () =>
      'A'.repeat(5 * 1024 * 1024),
    );
    await expectRefused(
      'oversized bundle',
      undefined,
      () => parseBundle(bytesOf(big)),
      'INPUT_TOO_LARGE',
    );
    const dir = tmp('big');
    writeFileSync(path.join(dir, 'big.sigstore.json'), bytesOf(big));
    const g = await gateOver(svc, { sources: [createFileSource({ paths: [dir] })] });
    gates.push(g);
    const d = await g.check(requestFor(A));
    // the file is reported with its code, never read (4 MiB per file)
    expectDecision(
      'oversized bundle file (gate)',
      undefined,
      d,
      'deny',
      'INPUT_TOO_LARGE',
      d.evidence[0]?.code,
    );
  });

  it('deeply nested json is refused with a code, never a stack overflow', async () => {
    // signed: the envelope's payload is a statement nested 100,000 levels deep
    const depth = 100_000;
    const text = JSON.stringify(statementAbout([A])).replace(
      /}$/,
      `,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    );
    const m = await mintDSSEBundle(svc, {
      statement: Buffer.from(text),
      version: '0.3',
      signer: 'keyless',
    });
    const err = await expectRefused(
      'deeply nested signed statement (verifier)',
      undefined,
      () => check(m.bundle),
      'INPUT_TOO_DEEP',
    );
    expect(err).not.toBeInstanceOf(RangeError);
    await rejectedByGate('deeply nested signed statement', bytesOf(m.bundle), 'INPUT_TOO_DEEP');
    // the caller's context, nested deep, is refused before deciding
    let context: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) context = { c: context };
    const g = await gateOver(svc, { evidence: [evidenceOf(bytesOf(good.bundle))] });
    gates.push(g);
    await expectRefused(
      'deeply nested caller context',
      undefined,
      () => g.check(requestFor(A, 'production', { context })),
      'INPUT_TOO_DEEP',
    );
  });
});

describe('a flood of attestations', () => {
  it('thousands of attestation files are SOURCE_LIMIT_EXCEEDED, could not decide, even beside a valid one', async () => {
    const dir = tmp('flood');
    const sub = path.join(dir, 'flood');
    mkdirSync(sub);
    writeFileSync(path.join(dir, 'good.sigstore.json'), bytesOf(good.bundle));
    const junk = Buffer.from('{}');
    for (let i = 0; i < 1500; i++) writeFileSync(path.join(sub, `${i}.sigstore.json`), junk);
    const g = await gateOver(svc, { sources: [createFileSource({ paths: [dir] })] });
    gates.push(g);
    const d = await g.check(requestFor(A));
    expectDecision(
      'thousands of attestation files',
      undefined,
      d,
      'error',
      'SOURCE_LIMIT_EXCEEDED',
    );
  });

  it('thousands of attestations in one JSON Lines file are bounded and never allow on their own', async () => {
    const dir = tmp('lines');
    const line = JSON.stringify(mutate(good.bundle, 'dsseEnvelope.signatures.0.sig', () => 'AAAA'));
    writeFileSync(
      path.join(dir, 'many.jsonl'),
      `${Array.from({ length: 3000 }, () => line).join('\n')}\n`,
    );
    const g = await gateOver(svc, { sources: [createFileSource({ paths: [dir] })] });
    gates.push(g);
    const d = await g.check(requestFor(A));
    expect(d.outcome).not.toBe('allow');
    expectDecision(
      'thousands of attestations in one JSON Lines file',
      undefined,
      d,
      d.outcome === 'error' ? 'error' : 'deny',
      undefined,
      d.error?.code ?? d.evidence[0]?.code,
    );
  });
});
