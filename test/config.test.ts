import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, mergeData } from '../src/config.js';
import { packagePath } from '../src/util/paths.js';
import { expectCode } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gate-config-'));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

describe('gate.yaml', () => {
  it('the documented example loads', () => {
    const c = loadConfig(packagePath('examples', 'gate.yaml'));
    expect(c.mode).toBe('enforce');
    expect(c.sources.bundles).toEqual([packagePath('examples', 'attestations')]);
    expect(c.ledger).toMatchObject({ backend: 'sqlite', path: packagePath('.gate', 'ledger.db') });
    expect(c.policy.config).toHaveProperty('break_glass.environments.production.approvals', 1);
    expect(c.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('no file means the defaults', () => {
    const c = loadConfig(undefined, { cwd: dir });
    expect(c).toMatchObject({
      mode: 'enforce',
      keys: [],
      sources: { bundles: [] },
      ledger: { backend: 'sqlite', path: path.join(dir, '.gate/ledger.db') },
    });
  });

  for (const [what, text, message] of [
    ['an unknown key', 'sorces: {}\n', /must NOT have additional properties/],
    ['a wrong type', 'mode: fast\n', /\/mode/],
    ['an identity without issuer', 'identities: [{san: a}]\n', /\/identities\/0/],
    [
      'a rekor url that is not http',
      'sources: {rekor: {url: "ftp://x"}}\n',
      /\/sources\/rekor\/url/,
    ],
    [
      'no decision at once',
      'server: {load: {maxConcurrent: 0}}\n',
      /\/server\/load\/maxConcurrent/,
    ],
  ] as const) {
    it(`rejects ${what} with CONFIG_INVALID naming where`, () =>
      expectCode(
        () => loadConfig(write('bad.yaml', text), { cwd: dir }),
        'CONFIG_INVALID',
        message,
      ));
  }

  it('takes the server load limits', () => {
    const c = loadConfig(write('load.yaml', 'server: {load: {maxConcurrent: 4, maxQueue: 0}}\n'), {
      cwd: dir,
    });
    expect(c.server.load).toEqual({ maxConcurrent: 4, maxQueue: 0, maxQueueWaitMs: 5000 });
  });

  it('rejects yaml that does not parse', () =>
    expectCode(
      () => loadConfig(write('broken.yaml', 'a: [1,\n'), { cwd: dir }),
      'CONFIG_INVALID',
      /not valid yaml/,
    ));
  it('rejects a missing key file', () =>
    expectCode(
      () => loadConfig(write('k.yaml', 'keys: [{path: nope.pub}]\n'), { cwd: dir }),
      'INPUT_UNREADABLE',
    ));
  it('rejects a missing config file', () =>
    expectCode(() => loadConfig(path.join(dir, 'absent.yaml'), { cwd: dir }), 'INPUT_UNREADABLE'));
  it('refuses a yaml alias bomb before expanding it', () => {
    const levels = Array.from(
      { length: 12 },
      (_, i) => `    l${i + 1}: &l${i + 1} [${Array(9).fill(`*l${i}`).join(', ')}]`,
    );
    const bomb = [
      'policy:',
      '  config:',
      '    l0: &l0 [x, x, x, x, x, x, x, x, x]',
      ...levels,
    ].join('\n');
    expectCode(
      () => loadConfig(write('bomb.yaml', bomb), { cwd: dir }),
      'CONFIG_INVALID',
      /not valid yaml/,
    );
  });
});

describe('policy data merge', () => {
  it('merges objects and replaces lists and scalars', () => {
    expect(mergeData({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: 2 })).toEqual({
      a: { b: 1, c: [3] },
      d: 2,
    });
  });
});
