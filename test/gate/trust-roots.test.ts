import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileSource } from '../../src/collect/files.js';
import { normalise } from '../../src/config.js';
import { createGate, type Gate } from '../../src/gate.js';
import { schemaChecker } from '../../src/util/schemas.js';
import { FIXTURES } from '../helpers.js';
import { startLocalGitHubSigstore, trustedRootLines } from '../support/github-sigstore.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * `trustedRoot:` as users get it from `gh attestation trusted-root`: JSON Lines, loaded by the
 * gate itself from its configuration. Evidence from a GitHub-like instance (no logs) and from a
 * public-good-like one each say which root and which kind of time they rested on.
 */
const checkDecision = schemaChecker('decision.schema.json', 'POLICY_OUTPUT_INVALID', 'decision');
const digestOf = (s: string) => createHash('sha256').update(s).digest('hex');
const APP = digestOf('app v2');
const provenance = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: APP } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://example.com/build/v1' },
    runDetails: { builder: { id: 'test' } },
  },
};

let publicGood: LocalSigstore;
let github: LocalSigstore;
let dir: string;

async function gateWith(trustedRoot: string, evidence: string): Promise<Gate> {
  const config = normalise(
    {
      trustedRoot,
      policy: { path: path.join(FIXTURES, 'policies', 'requires-provenance') },
      ledger: { path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db') },
    },
    dir,
    'test-config',
  );
  return createGate(config, { sources: () => [createFileSource({ paths: [evidence] })] });
}

const check = (gate: Gate) =>
  gate.check({ subjects: [{ digest: { algorithm: 'sha256', hex: APP } }], environment: 'dev' });

beforeAll(async () => {
  [publicGood, github] = await Promise.all([startLocalSigstore(), startLocalGitHubSigstore()]);
  dir = mkdtempSync(path.join(tmpdir(), 'gate-roots-'));
});
afterAll(() => Promise.all([publicGood.close(), github.close()]));

describe('when evidence comes from github-like and public-good-like instances', () => {
  let evidence: string;
  beforeAll(async () => {
    evidence = mkdtempSync(path.join(dir, 'ev-'));
    const opts = { statement: provenance, version: '0.3', signer: 'keyless' } as const;
    const gh = await mintDSSEBundle(github, { ...opts, tlog: false, tsa: true });
    const pg = await mintDSSEBundle(publicGood, opts);
    writeFileSync(path.join(evidence, 'github.sigstore.json'), JSON.stringify(gh.bundle));
    writeFileSync(path.join(evidence, 'public-good.sigstore.json'), JSON.stringify(pg.bundle));
  });

  it('verifies both with a json lines trusted root and says what each rested on', async () => {
    const lines = trustedRootLines(publicGood.trustedRoot, github.trustedRoot);
    writeFileSync(path.join(dir, 'roots.jsonl'), lines);
    const d = await check(await gateWith('roots.jsonl', evidence));
    checkDecision(d);
    expect(d.outcome).toBe('allow');
    expect(d.digests.trustRoot).toBe(digestOf(lines));
    const bySource = (name: string) => d.evidence.find((e) => e.source.endsWith(name));
    expect(bySource('github.sigstore.json')).toMatchObject({
      status: 'verified',
      timeSource: 'timestamp-authority',
      trustRoot: {
        name: new URL(github.fulcioURL).host,
        digest: digestOf(JSON.stringify(github.trustedRoot)),
      },
    });
    expect(bySource('github.sigstore.json')!.logIndex).toBeUndefined();
    expect(bySource('public-good.sigstore.json')).toMatchObject({
      status: 'verified',
      timeSource: 'transparency-log',
      trustRoot: { name: new URL(publicGood.fulcioURL).host },
    });
  });

  it('rejects the github-like evidence with the public-good root alone', async () => {
    writeFileSync(path.join(dir, 'pg.json'), JSON.stringify(publicGood.trustedRoot));
    const d = await check(await gateWith('pg.json', evidence));
    checkDecision(d);
    const gh = d.evidence.find((e) => e.source.endsWith('github.sigstore.json'));
    expect(gh).toMatchObject({ status: 'rejected', code: 'CERTIFICATE_INVALID' });
    expect(gh!.trustRoot).toBeUndefined();
  });

  it('could not decide on a malformed json lines trusted root', async () => {
    const text = `${JSON.stringify(publicGood.trustedRoot)}\nnot json\n`;
    writeFileSync(path.join(dir, 'bad.jsonl'), text);
    await expect(gateWith('bad.jsonl', evidence)).rejects.toMatchObject({
      code: 'TRUST_ROOT_INVALID',
      message: expect.stringMatching(/line 2 is not json/),
    });
  });
});
