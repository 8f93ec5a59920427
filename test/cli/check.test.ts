import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../../src/verify/attestation.js';
import { FIXTURES } from '../helpers.js';
import { toPEM } from '../support/local-fulcio.js';
import { preAuthEncoding } from '../support/local-rekor.js';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../support/mint.js';
import {
  intotoProposal,
  startRekorServer,
  upload,
  type RekorServer,
} from '../support/rekor-server.js';
import { requestCertificate } from '../support/sigstore-client.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';

/**
 * `gate check`, the built binary, against evidence in files, in a local Rekor v1 log and in a
 * local attestation store, all on 127.0.0.1: the exit codes a CI job sees.
 */
const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const provenance = (hex: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: hex } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
});

let svc: LocalSigstore;
let rekor: RekorServer;
let store: StoreServer;
let dir: string;
let rootFile: string;
let signer: { privateKey: KeyObject; pem: string };

async function gate(args: string[]) {
  const base = [
    'check',
    '--trusted-root',
    rootFile,
    '--policy',
    path.join(FIXTURES, 'policies', 'requires-provenance'),
  ];
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [BIN, ...base, ...args],
      { cwd: dir },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function envelope(statement: object) {
  const payload = Buffer.from(JSON.stringify(statement));
  const sig = sign('sha256', preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload), signer.privateKey);
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: '', sig: sig.toString('base64') }],
  };
}

beforeAll(async () => {
  svc = await startLocalSigstore();
  rekor = await startRekorServer();
  store = await startStoreServer();
  dir = mkdtempSync(path.join(tmpdir(), 'gate-cli-check-'));
  rootFile = path.join(dir, 'trusted_root.json');
  const root = svc.trustedRoot;
  writeFileSync(
    rootFile,
    JSON.stringify({ ...root, tlogs: [...root.tlogs, rekor.trustedRootTlog] }),
  );
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  signer = {
    privateKey: pair.privateKey,
    pem: toPEM(await requestCertificate(svc, pair, DEFAULT_IDENTITY)),
  };
});
afterAll(async () => {
  await Promise.all([svc?.close(), rekor?.close(), store?.close()]);
});

describe('gate check', () => {
  it('exits 0 on evidence in a bundle file, and prints why', async () => {
    const hex = sha('from a file');
    const m = await mintDSSEBundle(svc, {
      statement: provenance(hex),
      version: '0.3',
      signer: 'keyless',
    });
    writeFileSync(path.join(dir, 'p.sigstore.json'), JSON.stringify(m.bundle));
    const r = await gate([
      '--subject',
      `sha256:${hex}`,
      '--env',
      'dev',
      '--bundle',
      'p.sigstore.json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALLOW: sha256:/);
    expect(r.stdout).toContain('+ https://slsa.dev/provenance/v1 from file:');
  });

  it('exits 1 on no evidence, saying what is missing and what would pass', async () => {
    const r = await gate(['--subject', `sha256:${sha('nothing')}`, '--env', 'production']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('x test.provenance: no provenance for sha256:');
    expect(r.stdout).toContain('would pass: attach a slsa provenance attestation');
  });

  it('decides as of --at, records it as such, and refuses --at with --vsa or --break-glass', async () => {
    const subject = `sha256:${sha('as of')}`;
    const r = await gate([
      '--subject',
      subject,
      '--env',
      'production',
      '--at',
      '2026-01-02T03:04:05Z',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^DENY: sha256:[0-9a-f]+ for production as of 2026-01-02T03:04:05.000Z/,
    );
    const json = await gate([
      ...['--subject', subject, '--env', 'production', '--at', '2026-01-02T03:04:05+01:00'],
      ...['--format', 'json'],
    ]);
    expect(JSON.parse(json.stdout).asOf).toBe('2026-01-02T02:04:05.000Z');
    for (const bad of [
      ['--at', 'yesterday'],
      ['--at', '2026-01-02'],
      ['--at', '2026-01-02T03:04:05Z', '--vsa', 'vsa.json'],
      ['--at', '2026-01-02T03:04:05Z', '--break-glass', 'request.json'],
    ]) {
      const refused = await gate(['--subject', subject, '--env', 'production', ...bad]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/USAGE_ERROR: --at/);
    }
  });

  it('exits 2 on a context nested too deep, before deciding', async () => {
    writeFileSync(path.join(dir, 'deep.json'), `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`);
    const r = await gate([
      '--subject',
      `sha256:${sha('deep')}`,
      '--env',
      'dev',
      '--context',
      'deep.json',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/INPUT_TOO_DEEP: context nests more than 32 levels/);
  });

  it('exits 0 on evidence found in the rekor log by digest', async () => {
    const hex = sha('from rekor');
    await upload(rekor.url, intotoProposal(envelope(provenance(hex)), signer.pem));
    const r = await gate([
      '--subject',
      `sha256:${hex}`,
      '--env',
      'dev',
      '--rekor-url',
      rekor.url,
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.evidence[0]).toMatchObject({
      status: 'verified',
      source: expect.stringMatching(/^rekor:/),
    });
  });

  it('exits 0 on evidence found in the attestation store', async () => {
    const hex = sha('from the store');
    const m = await mintDSSEBundle(svc, {
      statement: provenance(hex),
      version: '0.3',
      signer: 'keyless',
    });
    store.add(`sha256:${hex}`, m.bundle);
    const r = await gate([
      '--subject',
      `sha256:${hex}`,
      '--env',
      'dev',
      '--store-url',
      store.url,
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).evidence[0].source).toMatch(/^store:/);
  });

  it('exits 2 when a source cannot be read, never "nothing found"', async () => {
    const r = await gate([
      '--subject',
      `sha256:${sha('x')}`,
      '--env',
      'dev',
      '--rekor-url',
      'http://127.0.0.1:9',
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^COULD NOT DECIDE/);
    expect(r.stdout).toContain('SOURCE_UNREACHABLE');
  });

  it('exits 2 with one coded line for a bad subject or config', async () => {
    const bad = await gate(['--subject', 'latest', '--env', 'dev']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^gate: USAGE_ERROR: [^\n]+\n$/);
    writeFileSync(path.join(dir, 'bad.yaml'), 'mode: maybe\n');
    const cfg = await gate([
      '--subject',
      `sha256:${sha('x')}`,
      '--env',
      'dev',
      '--config',
      'bad.yaml',
    ]);
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toMatch(/^gate: CONFIG_INVALID: /);
  });

  it('records every decision in the chained ledger, which verifies', async () => {
    const ledger = createSqliteLedger({ path: path.join(dir, '.gate', 'ledger.db') });
    try {
      const outcomes: string[] = [];
      for await (const r of ledger.records()) outcomes.push(r.outcome);
      expect(outcomes.length).toBeGreaterThanOrEqual(4);
      expect(outcomes).toEqual(expect.arrayContaining(['allow', 'deny', 'error']));
      expect((await ledger.verify()).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
