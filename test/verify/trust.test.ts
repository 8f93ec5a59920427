import { createHash } from 'node:crypto';
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
import { startLocalGitHubSigstore, trustedRootLines } from '../support/github-sigstore.js';

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

describe('when the trusted root file is json lines', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-trust-lines-'));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const line = (root: unknown) => JSON.stringify(root);

  it('loads every root in order, each named and digested by its line', async () => {
    const github = await startLocalGitHubSigstore();
    try {
      const gh = github.trustedRoot;
      const text = trustedRootLines(publicGood() as any, gh);
      const trust = loadTrustedRoot(write('gh.jsonl', text));
      expect(trust.roots.map((r) => r.name)).toEqual([
        'fulcio.sigstore.dev',
        new URL(github.fulcioURL).host,
      ]);
      expect(trust.roots[1]!.digest).toBe(createHash('sha256').update(line(gh)).digest('hex'));
      expect(trust.digest).toBe(createHash('sha256').update(text).digest('hex'));
      expect(trust.roots[1]!.material.tlogs).toEqual([]);
      expect(trust.root).toBe(trust.roots[0]!.root);
    } finally {
      await github.close();
    }
  });

  it('skips blank lines and keeps same-named roots apart', () => {
    const text = `${line(publicGood())}\n\n${line(publicGood())}\r\n`;
    const trust = loadTrustedRoot(write('twice.jsonl', text));
    expect(trust.roots.map((r) => r.name)).toEqual([
      'fulcio.sigstore.dev',
      'fulcio.sigstore.dev #2',
    ]);
  });

  it('rejects an empty file', () =>
    expectCode(
      () => loadTrustedRoot(write('empty.jsonl', ' \n\n')),
      'TRUST_ROOT_INVALID',
      /is empty/,
    ));

  it('rejects a line that is not json, naming it', () => {
    const text = `${line(publicGood())}\n\n{"mediaType": \n`;
    expectCode(
      () => loadTrustedRoot(write('bad.jsonl', text)),
      'TRUST_ROOT_INVALID',
      /line 3 is not json/,
    );
  });

  it('rejects a line that is not a root, naming it', () => {
    const root = publicGood();
    delete root.tlogs[0].publicKey.validFor.start;
    const text = `${line(publicGood())}\n${line(root)}\n`;
    expectCode(
      () => loadTrustedRoot(write('invalid.jsonl', text)),
      'TRUST_ROOT_INVALID',
      /line 2: trusted root tlogs\[0\] has no validity start/,
    );
  });

  it('rejects a line that is json but not an object', () =>
    expectCode(
      () => loadTrustedRoot(write('array.jsonl', `${line(publicGood())}\n[]\n`)),
      'TRUST_ROOT_INVALID',
      /line 2: trusted root must be a json object/,
    ));

  it('rejects more roots than a trust file holds', () => {
    const text = Array.from({ length: 17 }, () => line(publicGood())).join('\n');
    expectCode(
      () => loadTrustedRoot(write('many.jsonl', text)),
      'TRUST_ROOT_INVALID',
      /more than 16/,
    );
  });

  it('rejects a root with neither logs nor timestamp authorities', () => {
    const root = publicGood();
    root.tlogs = [];
    root.timestampAuthorities = [];
    expectCode(
      () => trustFromJSON(root, 'x', 't'),
      'TRUST_ROOT_INVALID',
      /no transparency logs and no timestamp authorities/,
    );
  });
});
