import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileCache, createFileSource, sharedScans } from '../../src/collect/files.js';
import type { CollectRequest } from '../../src/collect/types.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

const HEX = createHash('sha256').update('files test artifact\n').digest('hex');
const REQ: CollectRequest = { subject: { algorithm: 'sha256', hex: HEX } };
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const statement = (n: number) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app.tar.gz', digest: { sha256: HEX } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: `https://example.com/build/${n}` } },
});

let svc: LocalSigstore;
let trust: Trust;
let minted: Minted[];
let texts: string[];
let dir: string;
let outside: string;

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  minted = [];
  for (const n of [1, 2, 3]) {
    minted.push(
      await mintDSSEBundle(svc, { version: '0.3', signer: 'keyless', statement: statement(n) }),
    );
  }
  texts = minted.map((m) => JSON.stringify(m.bundle));
  dir = mkdtempSync(join(tmpdir(), 'gate-files-'));
  outside = mkdtempSync(join(tmpdir(), 'gate-outside-'));
});
afterAll(async () => {
  await svc.close();
  for (const d of [dir, outside]) rmSync(d, { recursive: true, force: true });
});

/** Writes a fresh tree under `dir` and returns its root. */
function tree(name: string, files: Record<string, string | Buffer>): string {
  const root = join(dir, name);
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  return root;
}

const envelopeOf = (m: Minted) =>
  JSON.stringify((m.bundle as { dsseEnvelope: unknown }).dsseEnvelope);

describe('a directory of evidence', () => {
  it('finds bundles, json lines and bare envelopes, and rejects what is not evidence', async () => {
    const jsonl = `${texts[2]}\n{"truncated":\n${envelopeOf(minted[0]!)}\r\n\n`;
    const root = tree('mixed', {
      'a.sigstore.json': texts[0]!,
      'sub/deeper/b.sigstore': texts[1]!,
      'att.intoto.jsonl': jsonl,
      'envelope.json': envelopeOf(minted[1]!),
      'copy/a-again.json': texts[0]!,
      'package.json': JSON.stringify({ name: 'not evidence' }),
      'notes.txt': 'ignored: not an evidence name',
    });
    const r = await createFileSource({ paths: [root] }).collect(REQ);

    expect(r.failures).toEqual([]);
    const bySource = Object.fromEntries(
      r.evidence.map((e) => [e.source.slice(root.length + 6), e]),
    );
    expect(Object.keys(bySource).sort()).toEqual([
      'a.sigstore.json',
      'att.intoto.jsonl#L1',
      'att.intoto.jsonl#L3',
      'envelope.json',
      'sub/deeper/b.sigstore',
    ]);
    expect(bySource['a.sigstore.json']).toMatchObject({ kind: 'bundle', id: sha256(texts[0]!) });
    expect(bySource['att.intoto.jsonl#L1']).toMatchObject({
      kind: 'bundle',
      id: sha256(texts[2]!),
    });
    // The id and bytes of a line leave out its CRLF ending.
    expect(bySource['att.intoto.jsonl#L3']).toMatchObject({
      kind: 'dsse-envelope',
      id: sha256(envelopeOf(minted[0]!)),
    });
    expect(bySource['envelope.json']!.kind).toBe('dsse-envelope');

    expect(r.rejected.map((x) => [x.source.slice(root.length + 6), x.code]).sort()).toEqual([
      ['att.intoto.jsonl#L2', 'INPUT_MALFORMED_JSON'],
      ['package.json', 'EVIDENCE_MALFORMED'],
    ]);
    expect(r.rejected.find((x) => x.code === 'INPUT_MALFORMED_JSON')!.id).toBe(
      sha256('{"truncated":'),
    );
  });

  it('keeps the bytes exactly: the bundles still verify', async () => {
    const root = tree('verify', { 'x.sigstore.json': texts[1]! });
    const [e] = (await createFileSource({ paths: [root] }).collect(REQ)).evidence;
    const att = verifyAttestation(e!.bytes, {
      trust,
      identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
      subject: { digest: REQ.subject },
    });
    expect(att.bundleDigest).toBe(e!.id);
  });

  it('reads a file named explicitly whatever its name, and counts a duplicate once', async () => {
    const root = tree('explicit', { 'bundle.txt': texts[0]!, 'b.json': texts[0]! });
    const r = await createFileSource({ paths: [join(root, 'bundle.txt'), root] }).collect(REQ);
    expect(r.evidence).toHaveLength(1);
    expect(r.evidence[0]!.source).toBe(`file:${join(root, 'bundle.txt')}`);
  });
});

describe('limits and failures', () => {
  it('rejects a file over the size cap without reading it', async () => {
    const root = tree('big', {
      'big.json': `{"pad":"${'x'.repeat(70_000)}"}`,
      'ok.json': texts[0]!,
    });
    const r = await createFileSource({ paths: [root], maxBytes: 64 * 1024 }).collect(REQ);
    expect(r.evidence).toHaveLength(1);
    expect(r.rejected).toEqual([
      expect.objectContaining({
        id: '',
        code: 'INPUT_TOO_LARGE',
        source: `file:${join(root, 'big.json')}`,
      }),
    ]);
  });

  it('reports a missing path as a failure, and still reads the others', async () => {
    const root = tree('partial', { 'a.json': texts[0]! });
    const missing = join(dir, 'no-such-dir');
    const r = await createFileSource({ paths: [missing, root] }).collect(REQ);
    expect(r.evidence).toHaveLength(1);
    expect(r.failures).toEqual([
      {
        source: `file:${missing}`,
        code: 'SOURCE_UNREACHABLE',
        message: `cannot look at ${missing}: no such file or directory`,
      },
    ]);
  });

  it('fails with SOURCE_LIMIT_EXCEEDED past maxFiles, returning no evidence', async () => {
    const root = tree('many', { 'a.json': texts[0]!, 'b.json': texts[1]!, 'c.json': texts[2]! });
    const r = await createFileSource({ paths: [root], maxFiles: 2 }).collect(REQ);
    expect(r.evidence).toEqual([]);
    expect(r.failures.map((f) => f.code)).toEqual(['SOURCE_LIMIT_EXCEEDED']);
  });

  it('follows links only to files inside the tree, and searches only maxDepth levels', async () => {
    writeFileSync(join(outside, 'secret.json'), texts[2]!);
    const root = tree('links', { 'real.json': texts[0]!, 'l1/l2/deep.json': texts[1]! });
    symlinkSync(join(root, 'real.json'), join(root, 'inside.json'));
    symlinkSync(join(outside, 'secret.json'), join(root, 'escape.json'));
    const r = await createFileSource({ paths: [root], maxDepth: 1 }).collect(REQ);
    expect(r.evidence.map((e) => e.source)).toEqual([`file:${join(root, 'inside.json')}`]);
    expect(r.rejected.map((x) => [x.source.slice(root.length + 6), x.code]).sort()).toEqual([
      ['escape.json', 'INPUT_UNREADABLE'],
      ['l1/l2', 'SOURCE_LIMIT_EXCEEDED'],
    ]);
  });
});

const idsOf = (r: { evidence: { id: string }[] }) => r.evidence.map((e) => e.id).sort();

describe('the file cache of a long-lived source', () => {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('reads an unchanged file once, and again once it changes or is replaced', async () => {
    const root = tree('cached', { 'a.sigstore.json': texts[0]!, 'b.sigstore.json': texts[1]! });
    const source = createFileSource({ paths: [root], cache: createFileCache({ racyMs: 0 }) });
    await pause(20);
    const first = await source.collect(REQ);
    const again = await source.collect(REQ);
    expect(idsOf(again)).toEqual([sha256(texts[0]!), sha256(texts[1]!)].sort());
    // the very same buffers: nothing was read again
    expect(again.evidence.map((e) => e.bytes)).toEqual(first.evidence.map((e) => e.bytes));
    expect(again.evidence[0]!.bytes).toBe(first.evidence[0]!.bytes);

    // rewritten in place (same inode), then replaced by a rename (a new inode), then removed
    writeFileSync(join(root, 'a.sigstore.json'), texts[2]!);
    await pause(20);
    expect(idsOf(await source.collect(REQ))).toEqual([sha256(texts[2]!), sha256(texts[1]!)].sort());
    writeFileSync(join(root, 'next.tmp'), texts[0]!);
    renameSync(join(root, 'next.tmp'), join(root, 'b.sigstore.json'));
    await pause(20);
    expect(idsOf(await source.collect(REQ))).toEqual([sha256(texts[2]!), sha256(texts[0]!)].sort());
    rmSync(join(root, 'a.sigstore.json'));
    expect(idsOf(await source.collect(REQ))).toEqual([sha256(texts[0]!)]);
  });

  it('keeps at most maxBytes of contents: a folder larger than that is read again', async () => {
    const root = tree('bounded', { 'a.sigstore.json': texts[0]!, 'b.sigstore.json': texts[1]! });
    const one = Math.max(texts[0]!.length, texts[1]!.length);
    const source = createFileSource({
      paths: [root],
      cache: createFileCache({ racyMs: 0, maxBytes: one + 10 }),
    });
    await pause(20);
    const first = await source.collect(REQ);
    const again = await source.collect(REQ);
    expect(idsOf(again)).toEqual(idsOf(first));
    // only the file read last fits: the other is read from disk each time
    const same = again.evidence.filter((e, i) => e.bytes === first.evidence[i]!.bytes);
    expect(same.length).toBeLessThan(2);
  });

  it('never remembers a file changed within the racy window', async () => {
    const root = tree('racy', { 'a.sigstore.json': texts[0]! });
    const source = createFileSource({ paths: [root], cache: createFileCache() });
    const first = await source.collect(REQ);
    const again = await source.collect(REQ);
    expect(idsOf(again)).toEqual([sha256(texts[0]!)]);
    // read again: a same-size rewrite within one clock tick would keep the times and size
    expect(again.evidence[0]!.bytes).not.toBe(first.evidence[0]!.bytes);
  });
});

describe('concurrent decisions on one folder', () => {
  it('share a scan, but never one that began before they asked', async () => {
    const started: Array<(n: number) => void> = [];
    const shared = sharedScans(() => new Promise<number>((r) => started.push(r)));
    const first = shared();
    const second = shared();
    const third = shared();
    expect(started.length).toBe(1);
    started[0]!(1);
    expect(await first).toBe(1);
    // the scan under way when they asked may have listed the folder before a file they expect
    await new Promise((r) => setImmediate(r));
    expect(started.length).toBe(2);
    started[1]!(2);
    expect([await second, await third]).toEqual([2, 2]);
    const fourth = shared();
    expect(started.length).toBe(3);
    started[2]!(3);
    expect(await fourth).toBe(3);
  });

  it('answer each request with lists of its own, and by its own deadline', async () => {
    const root = tree('shared', { 'a.sigstore.json': texts[0]! });
    const source = createFileSource({ paths: [root], cache: createFileCache({ racyMs: 0 }) });
    const [a, b] = await Promise.all([source.collect(REQ), source.collect(REQ)]);
    expect(a.evidence).not.toBe(b.evidence);
    expect(idsOf(a)).toEqual(idsOf(b));
    const late = await source.collect({ ...REQ, signal: AbortSignal.abort() });
    expect(late.failures).toMatchObject([{ code: 'SOURCE_TIMEOUT' }]);
  });
});
