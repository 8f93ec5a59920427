import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, FIXTURES } from '../helpers.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const CASES = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
const ID =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';
const A_TXT = path.join(CASES, 'a.txt');
const happy = (name: string) => ['--bundle', path.join(CASES, name, 'bundle.sigstore.json')];
const who = ['--certificate-identity', ID, '--certificate-oidc-issuer', ISSUER];

async function gate(args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('gate verify-bundle, the built binary', () => {
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `make build` first');
  });

  it('exits 0 and names the signer for a valid bundle', async () => {
    const res = await gate(['verify-bundle', ...happy('happy-path-v0.3'), ...who, A_TXT]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`verified: ${ID}`);
  });

  it('exits 1 with one coded line for a bundle that does not verify', async () => {
    const res = await gate(['verify-bundle', ...happy('signature-mismatch_fail'), ...who, A_TXT]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gate: [A-Z0-9_]+: [a-z].*\n$/);
  });

  it('exits 2 on a usage mistake without a stack trace', async () => {
    const res = await gate(['verify-bundle', ...happy('happy-path-v0.3'), A_TXT]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      'gate: USAGE_ERROR: give --certificate-identity (or --certificate-identity-regexp) with --certificate-oidc-issuer, or --key\n',
    );
  });
});

describe('gate verify-bundle, in-process', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'gate-cli-'));

  it('prints the verified statement as json for a dsse bundle', async () => {
    const dir = path.join(CASES, 'happy-path-intoto-in-dsse-v3');
    const res = await cli([
      'verify-bundle',
      '--bundle',
      path.join(dir, 'bundle.sigstore.json'),
      ...who,
      '--json',
      A_TXT,
    ]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(out.signer.identity).toBe(ID);
    expect(out.signer.extensions.issuer).toBe(ISSUER);
    expect(out.logEntries[0].logIndex).toMatch(/^\d+$/);
  });

  it('accepts an anchored identity regexp', async () => {
    const res = await cli([
      'verify-bundle',
      ...happy('happy-path-v0.3'),
      '--certificate-identity-regexp',
      'https://github\\.com/sigstore-conformance/.*',
      '--certificate-oidc-issuer',
      ISSUER,
      A_TXT,
    ]);
    expect(res.code).toBe(0);
  });

  it('rejects a regexp that matches only part of the identity', async () => {
    const res = await cli([
      'verify-bundle',
      ...happy('happy-path-v0.3'),
      '--certificate-identity-regexp',
      'sigstore-conformance',
      '--certificate-oidc-issuer',
      ISSUER,
      A_TXT,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gate: IDENTITY_MISMATCH: /);
  });

  it('explains that --staging needs a trusted root offline', async () => {
    const res = await cli([
      'verify-bundle',
      '--staging',
      ...happy('happy-path-v0.3'),
      ...who,
      A_TXT,
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^gate: TRUST_ROOT_UNAVAILABLE: --staging .*--trusted-root/);
  });

  const bad: Array<[string, string, string]> = [
    [
      'malformed json',
      '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",',
      'INPUT_MALFORMED_JSON',
    ],
    [
      'an unknown media type',
      '{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=9.9"}',
      'BUNDLE_UNSUPPORTED_MEDIA_TYPE',
    ],
    ['a binary file', '\u0000\u0001\u0002', 'INPUT_MALFORMED_JSON'],
  ];
  for (const [what, content, code] of bad) {
    it(`answers ${code} for ${what}`, async () => {
      const file = path.join(tmp, `${code}.json`);
      writeFileSync(file, content);
      const res = await cli(['verify-bundle', '--bundle', file, ...who, A_TXT]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`^gate: ${code}: [^\\n]+\\n$`));
    });
  }

  it('answers INPUT_UNREADABLE with exit 2 for a missing bundle', async () => {
    const res = await cli([
      'verify-bundle',
      '--bundle',
      path.join(tmp, 'absent.json'),
      ...who,
      A_TXT,
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^gate: INPUT_UNREADABLE: cannot read bundle .*absent\.json: no such file\n$/,
    );
  });

  it('treats a digest-shaped name of an existing file as a file', async () => {
    const name = 'sha256:' + 'a'.repeat(64);
    writeFileSync(path.join(tmp, name), 'not the artifact');
    const res = await cli(['verify-bundle', ...happy('happy-path-v0.3'), ...who, name], tmp);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gate: ARTIFACT_MISMATCH: /);
  });

  it('rejects a key-signed bundle when only an identity is given', async () => {
    const res = await cli(['verify-bundle', ...happy('managed-key-happy-path'), ...who, A_TXT]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^gate: PUBLIC_KEY_INVALID: bundle is signed with a key but no trusted key was given/,
    );
  });

  it('prints help and exits 0', async () => {
    const res = await cli(['verify-bundle', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('--certificate-oidc-issuer');
  });

  it('exits 2 on an unknown option', async () => {
    const res = await cli(['verify-bundle', '--bundle', 'b.json', '--frobnicate', A_TXT]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown option '--frobnicate'");
  });
});

describe('gate demo', () => {
  it('verifies the bundled example attestations and prints their statements', async () => {
    const res = await cli(['demo']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.match(/^VERIFIED /gm)).toHaveLength(3);
    expect(res.stdout).toContain(
      'predicateType https://github.com/npm/attestation/tree/main/specs/publish/v0.1',
    );
  });
});
