import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { coded as sourceCoded } from '../../src/collect/oci-layouts.js';
import { GateError } from '../../src/errors.js';
import { parseJSON } from '../../src/util/input.js';
import { trustFromJSON } from '../../src/verify/trust.js';
import { FIXTURES } from '../helpers.js';
import { coded } from './budget.js';
import { BUNDLE_CASES, replaceAt, tlogEntries } from './cases.js';

/**
 * What the fuzzers found, kept as plain examples (issue 12). Each failed before its fix in src/.
 */
const byName = (n: string) => BUNDLE_CASES.find((c) => c.name === n)!;
const REKOR2 = byName('rekor2-happy-path');
const V03 = byName('happy-path-v0.3');
const entryPath = ['verificationMaterial', 'tlogEntries', 0];

function rejects(c: (typeof BUNDLE_CASES)[number], edit: (e: any) => void): string {
  const json = structuredClone(c.json);
  edit(tlogEntries(json)[0]);
  const r = coded(() => c.verify(json));
  expect(r.ok, 'the changed bundle verified').toBe(false);
  return r.ok ? '' : r.code;
}

describe('log entries bound to what their log signed (entity-verifier.ts)', () => {
  it('a rekor v2 entry with another log index is rejected', () => {
    expect(rejects(REKOR2, (e) => (e.logIndex = String(Number(e.logIndex) + 1)))).toBe(
      'TLOG_INVALID',
    );
  });

  it('a rekor v2 entry naming another log id is rejected', () => {
    expect(rejects(REKOR2, (e) => (e.logId.keyId = Buffer.alloc(32, 7).toString('base64')))).toBe(
      'TLOG_INVALID',
    );
  });

  it("an inclusion proof whose tree size or root hash is not its checkpoint's is rejected", () => {
    for (const c of [REKOR2, V03]) {
      rejects(
        c,
        (e) => (e.inclusionProof.treeSize = String(Number(e.inclusionProof.treeSize) + 1)),
      );
      rejects(c, (e) => (e.inclusionProof.rootHash = Buffer.alloc(32, 7).toString('base64')));
    }
  });
});

describe('what a verified bundle reports (verifier.ts, bundle.ts)', () => {
  it('an integrated time in an entry without an inclusion promise is not reported', () => {
    const json = replaceAt(REKOR2.json, [...entryPath, 'integratedTime'], () => '1700000000');
    const v = REKOR2.verify(json);
    expect(v.logEntries[0]!.integratedTime).toBeUndefined();
    expect(v.timestamps.map((t) => t.source)).toEqual(['timestamp-authority']);
    expect(v.timeSource).toBe('timestamp-authority');
  });

  it('a log index written " 12", "+12" or "1e3" is refused, not reported as written', () => {
    for (const written of [` ${tlogEntries(V03.json)[0]!.logIndex}`, '+1', '1e3', '0x10', '-1']) {
      const json = replaceAt(V03.json, [...entryPath, 'logIndex'], () => written);
      expect(coded(() => V03.verify(json))).toEqual({ ok: false, code: 'BUNDLE_INVALID' });
    }
  });
});

describe('messages stay on one line', () => {
  it('a kind or version with a line break (the library quotes it)', () => {
    const json = replaceAt(V03.json, [...entryPath, 'kindVersion', 'version'], (v) => `${v}\n`);
    expect(coded(() => V03.verify(json))).toEqual({ ok: false, code: 'TLOG_BODY_MISMATCH' });
  });

  it('json that does not parse (V8 quotes the text around the error)', () => {
    let err: unknown;
    try {
      parseJSON('z\n  "media"', 'bundle');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GateError);
    expect((err as GateError).message).not.toMatch(/\n/);
  });

  it('a trusted root with an unknown enum value', () => {
    const file = path.join(FIXTURES, 'rekor', 'staging.trusted_root.json');
    const root = JSON.parse(readFileSync(file, 'utf8'));
    const changed = replaceAt(root, ['tlogs', 0, 'hashAlgorithm'], (v) => `${v}\n`);
    expect(coded(() => trustFromJSON(changed, 'd', 'fuzz'))).toEqual({
      ok: false,
      code: 'TRUST_ROOT_INVALID',
    });
  });

  it('a registry source failure quoting what the registry served', () => {
    const e = new GateError('OCI_REFERRER_MISMATCH', 'listed as a bundle but is text/plain\n');
    expect(sourceCoded(e).message).not.toMatch(/\n/);
  });
});
