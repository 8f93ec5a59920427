import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { compileIdentityRules } from '../../src/verify/identity.js';
import { loadTrustedRoot } from '../../src/verify/trust.js';
import { expectCode, FIXTURES } from '../helpers.js';

/**
 * Nine real public-good bundles (npm publish attestations for sigstore@1.0.0, v0.1 to v0.3, dsse
 * and intoto log entries), verified offline with the bundled public-good root and by subject
 * digest alone, as the gate checks evidence about an artifact it does not hold.
 */
const DIR = path.join(FIXTURES, 'sigstore-js', 'bundles');
const SUBJECT = {
  algorithm: 'sha512' as const,
  hex: '7bea9f6e7ff37f5fab0b36bf061200fff03099fd2fd696b91d04bc5e4f225eb9fd6e0cadcad54ba980f43fb352a99e8810b4e0abeb5c0ef2cf9108cd1f258b36',
};
const trust = loadTrustedRoot();
const identities = compileIdentityRules([
  { san: 'brian@dehamer.com', issuer: 'https://github.com/login/oauth' },
]);
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.sigstore'))
  .sort();

describe('real public-good bundles', () => {
  it('has all nine', () => expect(files).toHaveLength(9));

  for (const file of files) {
    it(`verifies ${file} by subject digest`, () => {
      const a = verifyAttestation(readFileSync(path.join(DIR, file)), {
        trust,
        identities,
        subject: { digest: SUBJECT },
      });
      expect(a.predicateType).toBe(
        'https://github.com/npm/attestation/tree/main/specs/publish/v0.1',
      );
      expect(a.matchedSubject.name).toBe('pkg:npm/sigstore@1.0.0');
      expect(a.signer).toMatchObject({
        kind: 'keyless',
        identity: 'brian@dehamer.com',
        issuer: 'https://github.com/login/oauth',
      });
      expect(a.logEntries).toHaveLength(1);
      expect(a.logEntries[0]!.integratedTime).toMatch(/^2023-/);
      expect(['dsse', 'intoto']).toContain(a.logEntries[0]!.kind);
      expect(a.timestamps[0]!.source).toBe('transparency-log');
    });
  }

  it('rejects one when asked about another digest', () =>
    expectCode(
      () =>
        verifyAttestation(readFileSync(path.join(DIR, files[0]!)), {
          trust,
          identities,
          subject: { digest: { algorithm: 'sha512', hex: 'ab'.repeat(64) } },
        }),
      'SUBJECT_MISMATCH',
    ));

  it('rejects one when the signer is someone else', () =>
    expectCode(
      () =>
        verifyAttestation(readFileSync(path.join(DIR, files[0]!)), {
          trust,
          identities: compileIdentityRules([
            { san: 'mallory@example.com', issuer: 'https://github.com/login/oauth' },
          ]),
          subject: { digest: SUBJECT },
        }),
      'IDENTITY_MISMATCH',
      /brian@dehamer\.com/,
    ));
});
