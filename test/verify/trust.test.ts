import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TRUSTED_ROOT_PATH,
  loadTrustedRoot,
  trustFromJSON,
} from '../../src/verify/trust.js';
import { expectCode } from '../helpers.js';

const publicGood = () =>
  JSON.parse(readFileSync(DEFAULT_TRUSTED_ROOT_PATH, 'utf8')) as Record<string, any>;

describe('trusted root', () => {
  it('loads the bundled public-good root by default', () => {
    const trust = loadTrustedRoot();
    expect(trust.source).toBe('public-good (bundled)');
    expect(trust.material.tlogs.length).toBeGreaterThanOrEqual(2);
    expect(trust.material.certificateAuthorities.length).toBeGreaterThanOrEqual(2);
    expect(trust.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  for (const [field, drop] of [
    ['tlogs', (r: Record<string, any>) => delete r.tlogs[1].publicKey.validFor.start],
    ['ctlogs', (r: Record<string, any>) => delete r.ctlogs[0].publicKey.validFor],
    [
      'certificateAuthorities',
      (r: Record<string, any>) => delete r.certificateAuthorities[0].validFor.start,
    ],
    [
      'timestampAuthorities',
      (r: Record<string, any>) => (r.timestampAuthorities[0].validFor.start = ''),
    ],
  ] as const) {
    it(`rejects a root whose ${field} entry has no validity start`, () => {
      const root = publicGood();
      drop(root);
      expectCode(
        () => trustFromJSON(root, 'x', 'test'),
        'TRUST_ROOT_INVALID',
        new RegExp(`${field}\\[\\d\\] has no validity start`),
      );
    });
  }

  it('rejects a root that is not an object', () =>
    expectCode(() => trustFromJSON([], 'x', 't'), 'TRUST_ROOT_INVALID'));
  it('rejects a root with no authorities at all', () =>
    expectCode(
      () =>
        trustFromJSON(
          {
            mediaType: 'x',
            tlogs: [],
            certificateAuthorities: [],
            ctlogs: [],
            timestampAuthorities: [],
          },
          'x',
          't',
        ),
      'TRUST_ROOT_INVALID',
      /no certificate authorities and no logs/,
    ));
  it('rejects a root file with malformed json', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gate-trust-')), 'root.json');
    writeFileSync(file, '{"tlogs": [');
    expectCode(() => loadTrustedRoot(file), 'INPUT_MALFORMED_JSON', /trusted root/);
  });
  it('rejects a root whose key bytes are not a key', () => {
    const root = publicGood();
    root.tlogs[0].publicKey.rawBytes = 'AAAA';
    expectCode(() => trustFromJSON(root, 'x', 't'), 'TRUST_ROOT_INVALID', /malformed/);
  });
});
