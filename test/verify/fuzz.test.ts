import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GateError } from '../../src/errors.js';
import { loadTrustedRoot } from '../../src/verify/trust.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { FIXTURES } from '../helpers.js';

/**
 * Hostile input never escapes as anything but a coded GateError, and a changed bundle never
 * verifies as something other than what was signed.
 */
const CASE = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify', 'happy-path-v0.3');
const BYTES = readFileSync(path.join(CASE, 'bundle.sigstore.json'));
const ARTIFACT = readFileSync(
  path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify', 'a.txt'),
);
const trust = loadTrustedRoot();
const identities = [
  {
    san: 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
  },
];
const verify = (input: unknown) =>
  verifyBundle(input, { trust, identities, artifact: { bytes: ARTIFACT } });
const original = verify(BYTES);

function outcome(input: unknown): 'rejected' | 'verified' {
  try {
    const v = verify(input);
    // Anything that still verifies must be the same signature by the same signer.
    expect(v.signer).toEqual(original.signer);
    expect(v.logEntries).toEqual(original.logEntries);
    return 'verified';
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(GateError);
    expect((err as GateError).message).not.toMatch(/\n/);
    return 'rejected';
  }
}

describe('hostile bundles', () => {
  it('the unchanged bundle verifies', () => expect(outcome(BYTES)).toBe('verified'));

  it('a flipped byte anywhere is rejected with a code or changes nothing that was signed', () => {
    fc.assert(
      fc.property(fc.nat(BYTES.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const copy = Buffer.from(BYTES);
        copy[at] = copy[at]! ^ xor;
        outcome(copy);
      }),
      { numRuns: 400 },
    );
  });

  it('any json value is rejected with a code', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(outcome(JSON.stringify(value))).toBe('rejected');
      }),
      { numRuns: 300 },
    );
  });

  it('a field replaced by a random json value is rejected with a code or changes nothing signed', () => {
    const json = JSON.parse(BYTES.toString('utf8'));
    const paths = leaves(json);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (p, value) => {
        const copy = structuredClone(json);
        let node = copy;
        for (const k of p.slice(0, -1)) node = node[k];
        node[p[p.length - 1]!] = value;
        outcome(copy);
      }),
      { numRuns: 300 },
    );
  });
});

function leaves(v: any, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [at];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [at, ...keys.flatMap((k) => leaves(v[k], [...at, k]))].filter((p) => p.length > 0);
}
