import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { attestBlobArgs, COSIGN, peer, type Peer } from '../support/peers.js';

/**
 * cosign v3's key-signed bundles without a log entry (`--tlog-upload=false`, common in
 * air-gapped and private setups; kyverno #17109), issue 13. cosign accepts them only with an
 * explicit --insecure-ignore-tlog; the gate only for a key declared `transparency: optional`,
 * and then says the evidence has no trusted time. Real cosign, no services needed.
 */
const CLI = packagePath('dist', 'cli', 'main.js');
const POLICY = packagePath('test', 'fixtures', 'policies', 'requires-provenance');
const ARTIFACT = 'unlogged artifact\n';
const HEX = createHash('sha256').update(ARTIFACT).digest('hex');
const PROVENANCE = 'https://slsa.dev/provenance/v1';
const ENV = { COSIGN_PASSWORD: 'correct horse' };

let cosign: Peer;

beforeAll(async () => {
  cosign = peer(COSIGN);
  await cosign.run(['generate-key-pair'], ENV);
  writeFileSync(path.join(cosign.dir, 'artifact.txt'), ARTIFACT);
  writeFileSync(
    path.join(cosign.dir, 'provenance.json'),
    JSON.stringify({ buildDefinition: { buildType: 'https://example.com/build/v1' } }),
  );
  mkdirSync(path.join(cosign.dir, 'evidence'));
  await cosign.run(
    attestBlobArgs({
      predicate: 'provenance.json',
      type: PROVENANCE,
      bundle: 'evidence/provenance.sigstore.json',
      artifact: 'artifact.txt',
      rekorUrl: false,
    }),
    ENV,
  );
  // an empty trusted root: no log, no authority (the key is the only trust)
  writeFileSync(
    path.join(cosign.dir, 'trusted_root.json'),
    JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' }),
  );
}, 120_000);

async function gateCheck(
  key: string,
  folder = 'evidence',
): Promise<{ code: number; decision: any }> {
  writeFileSync(
    path.join(cosign.dir, 'gate.yaml'),
    [
      `keys: [${key}]`,
      `sources: { bundles: [${folder}] }`,
      `policy: { path: ${POLICY} }`,
      'ledger: { path: ledger.db }',
      '',
    ].join('\n'),
  );
  const args = ['check', '--config', 'gate.yaml', '--subject', `sha256:${HEX}`, '--env', 'dev'];
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, ...args, '--format', 'json'],
      { cwd: cosign.dir },
    );
    return { code: 0, decision: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, decision: JSON.parse(e.stdout) };
  }
}

const verifyArgs = [
  'verify-blob-attestation',
  '--key',
  'cosign.pub',
  '--bundle',
  'evidence/provenance.sigstore.json',
  '--type',
  PROVENANCE,
  'artifact.txt',
];

describe("cosign's key-signed bundles without a log entry", () => {
  it('the bundle has no log entry and no timestamp', () => {
    const bundle = JSON.parse(
      readFileSync(path.join(cosign.dir, 'evidence', 'provenance.sigstore.json'), 'utf8'),
    );
    expect(bundle.verificationMaterial.tlogEntries ?? []).toEqual([]);
    expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []).toEqual(
      [],
    );
  });

  it('cosign refuses it unless told --insecure-ignore-tlog', async () => {
    await expect(cosign.run(verifyArgs)).rejects.toThrow(/failed/);
    const { stderr } = await cosign.run([...verifyArgs, '--insecure-ignore-tlog']);
    expect(stderr).toMatch(/Verified OK/);
  });

  it('the gate refuses it for a key that needs a log entry (the default)', async () => {
    const { code, decision } = await gateCheck('{ path: cosign.pub }');
    expect(decision.outcome).toBe('deny');
    expect(code).toBe(1);
    expect(decision.evidence).toMatchObject([
      { status: 'rejected', code: 'TIMESTAMP_INVALID', message: expect.stringMatching(/0/) },
    ]);
  });

  it('the gate accepts it for a key declared transparency: optional, and says it has no time', async () => {
    const { code, decision } = await gateCheck('{ path: cosign.pub, transparency: optional }');
    expect(decision.outcome).toBe('allow');
    expect(code).toBe(0);
    expect(decision.evidence).toMatchObject([
      {
        status: 'verified',
        predicateType: PROVENANCE,
        signer: { kind: 'key' },
        timeSource: 'none',
      },
    ]);
    expect(decision.evidence[0].tlog).toBeUndefined();
  });

  it('optional transparency verifies the signature all the same: an edited payload is refused', async () => {
    const bundle = JSON.parse(
      readFileSync(path.join(cosign.dir, 'evidence', 'provenance.sigstore.json'), 'utf8'),
    );
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
    statement.predicate.buildDefinition.buildType = 'https://example.com/build/forged';
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    mkdirSync(path.join(cosign.dir, 'edited'), { recursive: true });
    writeFileSync(path.join(cosign.dir, 'edited', 'p.sigstore.json'), JSON.stringify(bundle));
    const { code, decision } = await gateCheck(
      '{ path: cosign.pub, transparency: optional }',
      'edited',
    );
    expect(decision.outcome).toBe('deny');
    expect(code).toBe(1);
    expect(decision.evidence).toMatchObject([{ status: 'rejected', code: 'SIGNATURE_INVALID' }]);
  });
});
