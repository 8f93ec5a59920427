import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.js';
import { startLocalGitHubSigstore, trustedRootLines } from '../support/github-sigstore.js';
import { DEFAULT_IDENTITY, mintMessageBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/** `gate verify-bundle --trusted-root` with the JSON Lines `gh attestation trusted-root` prints. */
const ARTIFACT = Buffer.from('gate cli trust roots\n');
let publicGood: LocalSigstore;
let github: LocalSigstore;
let dir: string;
let bundle: string;
let artifact: string;
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const verify = (root: string) =>
  cli([
    'verify-bundle',
    '--bundle',
    bundle,
    '--trusted-root',
    root,
    '--certificate-identity',
    DEFAULT_IDENTITY.san,
    '--certificate-oidc-issuer',
    DEFAULT_IDENTITY.issuer,
    artifact,
  ]);

beforeAll(async () => {
  [publicGood, github] = await Promise.all([startLocalSigstore(), startLocalGitHubSigstore()]);
  dir = mkdtempSync(path.join(tmpdir(), 'gate-cli-roots-'));
  const m = await mintMessageBundle(github, {
    artifact: ARTIFACT,
    version: '0.3',
    signer: 'keyless',
    tlog: false,
    tsa: true,
  });
  bundle = write('github.sigstore.json', JSON.stringify(m.bundle));
  artifact = write('artifact', ARTIFACT.toString());
});
afterAll(() => Promise.all([publicGood.close(), github.close()]));

describe('gate verify-bundle --trusted-root', () => {
  it('verifies a bundle of a root without logs given json lines', async () => {
    const roots = write(
      'roots.jsonl',
      trustedRootLines(publicGood.trustedRoot, github.trustedRoot),
    );
    const res = await verify(roots);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`verified: ${DEFAULT_IDENTITY.san}`);
  });

  it('exits 1 with the public-good root alone', async () => {
    const res = await verify(write('pg.json', JSON.stringify(publicGood.trustedRoot)));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gate: CERTIFICATE_INVALID: [a-z].*\n$/);
  });

  it('exits 2 naming the line of a malformed json lines root, without a stack trace', async () => {
    const text = `${JSON.stringify(publicGood.trustedRoot)}\n{"tlogs": [\n`;
    const res = await verify(write('bad.jsonl', text));
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^gate: TRUST_ROOT_INVALID: .*line 2 is not json.*\n$/);
  });
});
