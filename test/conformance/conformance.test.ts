import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, FIXTURES } from '../helpers.js';

/**
 * The sigstore-conformance bundle-verify suite, run exactly as its harness runs a client: every
 * case twice, once with the artifact's path and once with `sha256:<hex>`, through the CLI
 * protocol. A case whose name ends in `_fail` must exit non-zero; every other must exit 0.
 */
const SUITE = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
const DEFAULT_IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';
const PUBLIC_GOOD = path.join(FIXTURES, '..', '..', 'trust', 'public-good.trusted_root.json');

const cases = readdirSync(SUITE, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

function argsFor(name: string, target: 'path' | 'digest'): string[] {
  const dir = path.join(SUITE, name);
  const file = (f: string) => path.join(dir, f);
  const read = (f: string, dflt: string) =>
    existsSync(file(f)) ? readFileSync(file(f), 'utf8').trim() : dflt;
  const artifact = existsSync(file('artifact')) ? file('artifact') : path.join(SUITE, 'a.txt');
  const args = ['verify-bundle', '--bundle', file('bundle.sigstore.json')];
  if (existsSync(file('key.pub'))) {
    args.push('--key', file('key.pub'));
  } else {
    args.push('--certificate-identity', read('identity', DEFAULT_IDENTITY));
    args.push('--certificate-oidc-issuer', read('issuer', DEFAULT_ISSUER));
  }
  args.push(
    '--trusted-root',
    existsSync(file('trusted_root.json')) ? file('trusted_root.json') : PUBLIC_GOOD,
  );
  const digest = 'sha256:' + createHash('sha256').update(readFileSync(artifact)).digest('hex');
  args.push(target === 'path' ? artifact : digest);
  return args;
}

describe('sigstore-conformance bundle-verify', () => {
  it('has all 70 cases', () => {
    expect(cases).toHaveLength(70);
  });

  for (const name of cases) {
    const shouldPass = !name.endsWith('_fail');
    for (const target of ['path', 'digest'] as const) {
      it(`${shouldPass ? 'verifies' : 'rejects'} ${name} (${target})`, async () => {
        const res = await cli(argsFor(name, target));
        if (shouldPass) {
          expect(res.stderr).toBe('');
          expect(res.code).toBe(0);
        } else {
          expect(res.code, res.stdout).not.toBe(0);
          // a rejection is one coded line, never a stack trace
          expect(res.stderr).toMatch(/^gate: [A-Z0-9_]+: .+\n$/);
          expect(res.stderr).not.toMatch(/\n\s+at /);
        }
      });
    }
  }
});
