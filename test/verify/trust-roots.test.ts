import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { loadTrustedRoot, type Trust } from '../../src/verify/trust.js';
import type { IdentityRule } from '../../src/verify/types.js';
import { expectCode } from '../helpers.js';
import { startLocalGitHubSigstore, trustedRootLines } from '../support/github-sigstore.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type MintDSSEOptions } from '../support/mint.js';
import { mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Several trusted roots in one file, each with its own rules: a public-good-like local instance
 * (CA, CT log, Rekor, TSA) and a GitHub-like one (CA and TSA only, no logs), as
 * `gh attestation trusted-root` prints them. Every bundle is minted at test time.
 */
const ARTIFACT = Buffer.from('gate trust roots artifact\n');
const SHA256 = createHash('sha256').update(ARTIFACT).digest('hex');
const ID: IdentityRule = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };
const STATEMENT = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app.tar.gz', digest: { sha256: SHA256 } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
};
const KEYLESS: MintDSSEOptions = { statement: STATEMENT, version: '0.3', signer: 'keyless' };

let publicGood: LocalSigstore;
let github: LocalSigstore;
let both: Trust;
let publicGoodOnly: Trust;
const dir = mkdtempSync(path.join(tmpdir(), 'gate-roots-'));

function trustFile(name: string, text: string): Trust {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return loadTrustedRoot(file);
}
const verify = (bundle: unknown, trust: Trust) =>
  verifyAttestation(bundle, { trust, identities: [ID], subject: { bytes: ARTIFACT } });
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  [publicGood, github] = await Promise.all([startLocalSigstore(), startLocalGitHubSigstore()]);
  both = trustFile('both.jsonl', trustedRootLines(publicGood.trustedRoot, github.trustedRoot));
  publicGoodOnly = trustFile('public-good.json', JSON.stringify(publicGood.trustedRoot, null, 2));
});
afterAll(() => Promise.all([publicGood.close(), github.close()]));

describe('when the bundle comes from a root without logs', () => {
  const mintGitHub = (svc = github) => mintDSSEBundle(svc, { ...KEYLESS, tlog: false, tsa: true });

  it('verifies with the json lines root, resting on that root and its timestamp', async () => {
    const m = await mintGitHub();
    const a = verify(m.bundle, both);
    expect(a.signer).toMatchObject({ kind: 'keyless', identity: ID.san, issuer: ID.issuer });
    expect(a.logEntries).toEqual([]);
    expect(a.timeSource).toBe('timestamp-authority');
    expect(a.trustRoot).toEqual({
      name: new URL(github.fulcioURL).host,
      digest: sha256(JSON.stringify(github.trustedRoot)),
    });
  });

  it('fails against the public-good root alone', async () => {
    const m = await mintGitHub();
    expectCode(() => verify(m.bundle, publicGoodOnly), 'CERTIFICATE_INVALID');
  });

  it('fails without its rfc 3161 timestamp', async () => {
    const m = await mintGitHub();
    const bare = mutate(
      m.bundle,
      'verificationMaterial.timestampVerificationData',
      () => undefined,
    );
    expectCode(() => verify(bare, both), 'TIMESTAMP_INVALID', /needs an rfc 3161 timestamp/);
  });

  it('fails with a timestamp from an authority of another root', async () => {
    const m = await mintGitHub();
    const other = await mintDSSEBundle(publicGood, { ...KEYLESS, tlog: false, tsa: true });
    const tsa = other.bundle.verificationMaterial.timestampVerificationData;
    const swapped = mutate(m.bundle, 'verificationMaterial.timestampVerificationData', () => tsa);
    expectCode(() => verify(swapped, both), 'TIMESTAMP_INVALID');
  });

  it('fails when its root lists a ct log, for the certificate carries no sct', async () => {
    const m = await mintGitHub();
    const root = github.trustedRoot;
    root.ctlogs = publicGood.trustedRoot.ctlogs;
    const trust = trustFile('ct.jsonl', trustedRootLines(publicGood.trustedRoot, root));
    expectCode(() => verify(m.bundle, trust), 'CERTIFICATE_INVALID', /expected 1 SCTs, got 0/);
  });

  it('refuses a log entry its root has no log to check', async () => {
    const m = await mintGitHub();
    const logged = await mintDSSEBundle(publicGood, KEYLESS);
    const entries = logged.bundle.verificationMaterial.tlogEntries;
    const withEntry = mutate(m.bundle, 'verificationMaterial.tlogEntries', () => entries);
    expectCode(() => verify(withEntry, both), 'TLOG_INVALID', /has no transparency log to check/);
  });

  it('fails when the timestamp is outside the certificate validity', async () => {
    // The TSA stamps 11 minutes on: after the 10-minute Fulcio certificate expired.
    const late = await startLocalGitHubSigstore({
      clocks: { tsa: () => Date.now() + 11 * 60_000 },
    });
    try {
      const m = await mintGitHub(late);
      const trust = trustFile(
        'late.jsonl',
        trustedRootLines(publicGood.trustedRoot, late.trustedRoot),
      );
      expectCode(() => verify(m.bundle, trust), 'CERTIFICATE_INVALID');
    } finally {
      await late.close();
    }
  });
});

describe('when the bundle comes from a root with logs', () => {
  it('verifies with the json lines root, resting on the first root and its log', async () => {
    const m = await mintDSSEBundle(publicGood, { ...KEYLESS, tsa: true });
    const a = verify(m.bundle, both);
    expect(a.timeSource).toBe('transparency-log');
    expect(a.trustRoot?.name).toBe(new URL(publicGood.fulcioURL).host);
    expect(a.trustRoot?.digest).toBe(sha256(JSON.stringify(publicGood.trustedRoot)));
  });

  it('still fails without its log entry, even beside a root without logs', async () => {
    const m = await mintDSSEBundle(publicGood, { ...KEYLESS, tsa: true });
    const stripped = mutate(m.bundle, 'verificationMaterial.tlogEntries', () => []);
    expectCode(() => verify(stripped, both), 'TLOG_INVALID', /expected 1 tlog entries, got 0/);
  });

  it('verifies a key-signed bundle against whichever root holds its log', async () => {
    const m = await mintDSSEBundle(publicGood, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'key',
    });
    const reversed = trustFile(
      'reversed.jsonl',
      trustedRootLines(github.trustedRoot, publicGood.trustedRoot),
    );
    const keys = [{ pem: m.publicKeyPem!, hint: m.keyHint }];
    const a = verifyAttestation(m.bundle, { trust: reversed, keys, subject: { bytes: ARTIFACT } });
    expect(a.trustRoot?.name).toBe(new URL(publicGood.fulcioURL).host);
    expect(a.timeSource).toBe('transparency-log');
  });
});
