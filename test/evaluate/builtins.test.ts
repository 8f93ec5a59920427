import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GATE_BUILTINS,
  parseRfc3339Ns,
  semverCompare,
  semverIsValid,
} from '../../src/evaluate/builtins.js';
import { findOpa } from '../../src/evaluate/opa-cli.js';
import { loadCompiledPolicy } from '../../src/evaluate/policy.js';

/**
 * The builtins the gate provides to WebAssembly policies must answer exactly as OPA's Go
 * implementations do, or a policy would decide differently under `opa eval`/`opa test` and in
 * the gate. The tables below are `opa eval` (v1.22.2) answers; the last group asks the real opa
 * again, on generated inputs, and runs the builtins through a compiled policy.
 */

// [input, nanoseconds since the epoch or undefined (OPA: an error)] from opa eval
const TIMES: Array<[string, bigint | undefined]> = [
  ['1970-01-01T00:00:00Z', 0n],
  ['2026-11-20T12:00:00Z', 1795176000000000000n],
  ['2026-11-20T14:00:00.5+02:00', 1795176000500000000n],
  ['2026-11-20T06:30:00.123456789-05:30', 1795176000123456789n],
  ['2024-02-29T00:00:00Z', 1709164800000000000n],
  ['2023-02-29T00:00:00Z', undefined],
  ['2000-02-29T23:59:59Z', 951868799000000000n],
  ['1900-02-29T00:00:00Z', undefined],
  ['2100-02-28T12:00:00Z', 4107499200000000000n],
  ['2026-11-20T12:00:00,25Z', 1795176000250000000n],
  ['2026-11-20T12:00:00.1234567891Z', 1795176000123456789n],
  ['2026-11-20T12:00:00.000000001Z', 1795176000000000001n],
  ['1969-12-31T23:59:59.999999999Z', -1n],
  ['2026-11-20T7:05:00Z', 1795158300000000000n],
  ['2026-11-20T12:00:00+24:00', 1795089600000000000n],
  ['2026-11-20T12:00:00-23:60', 1795262400000000000n],
  ['2026-11-20T12:00:00+00:00', 1795176000000000000n],
  ['2026-11-20T12:00:00-00:00', 1795176000000000000n],
  ['1677-09-21T00:12:43.145224192Z', -9223372036854775808n],
  ['1677-09-21T00:12:43.145224191Z', undefined],
  ['2262-04-11T23:47:16.854775807Z', 9223372036854775807n],
  ['2262-04-11T23:47:16.854775808Z', undefined],
  ['2026-11-20T12:00:00z', undefined],
  ['2026-11-20t12:00:00Z', undefined],
  ['2026-11-20 12:00:00Z', undefined],
  ['2026-11-20T12:00:00', undefined],
  ['2026-11-20T12:00Z', undefined],
  ['2026-11-20', undefined],
  ['2026-11-20T24:00:00Z', undefined],
  ['2026-11-20T12:60:00Z', undefined],
  ['2026-11-20T12:00:60Z', undefined],
  ['2026-13-01T00:00:00Z', undefined],
  ['2026-00-01T00:00:00Z', undefined],
  ['2026-04-31T00:00:00Z', undefined],
  ['2026-11-20T12:00:00+25:00', undefined],
  ['2026-11-20T12:00:00+01:61', undefined],
  ['2026-11-20T12:00:00+0100', undefined],
  ['2026-11-20T12:00:00+1:00', undefined],
  ['2026-11-20T12:00:00.Z', undefined],
  ['2026-11-20T012:00:00Z', undefined],
  ['02026-11-20T12:00:00Z', undefined],
  ['2026-1-20T12:00:00Z', undefined],
  [' 2026-11-20T12:00:00Z', undefined],
  ['2026-11-20T12:00:00Z ', undefined],
  ['9999-12-31T23:59:59Z', undefined],
  ['', undefined],
  ['soon', undefined],
];

// [version, semver.is_valid] from opa eval
const VERSIONS: Array<[string, boolean]> = [
  ['1.2.3', true],
  ['v1.2.3', true],
  ['0.0.0', true],
  ['1.0.0-alpha', true],
  ['1.0.0-alpha.1', true],
  ['1.0.0-0.3.7', true],
  ['1.0.0-x.7.z.92', true],
  ['1.0.0-x-y-z.--', true],
  ['1.0.0+20130313144700', true],
  ['1.0.0-beta+exp.sha.5114f85', true],
  ['1.0.0+21AF26D3----117B344092BD', true],
  ['9223372036854775807.0.0', true],
  ['1.2.3-99999999999999999999', true],
  ['1.2', false],
  ['1', false],
  ['1.2.3.4', false],
  ['01.2.3', false],
  ['1.02.3', false],
  ['1.2.03', false],
  ['1.2.3-01', false],
  ['1.2.3-', false],
  ['1.2.3+', false],
  ['1.2.3-alpha..1', false],
  ['1.2.3+build..1', false],
  ['1.2.3-al_pha', false],
  ['vv1.2.3', false],
  ['V1.2.3', false],
  [' 1.2.3', false],
  ['1.2.3 ', false],
  ['-1.2.3', false],
  ['+1.2.3', false],
  ['1.-2.3', false],
  ['9223372036854775808.0.0', false],
  ['1.2.3+b+c', false],
  ['', false],
  ['x.y.z', false],
];

// [a, b, semver.compare(a, b) or undefined (OPA: an error)] from opa eval
const COMPARISONS: Array<[string, string, -1 | 0 | 1 | undefined]> = [
  ['1.2.3', '1.10.0', -1],
  ['10.0.0', '9.99.99', 1],
  ['v2.0.0', '2.0.0+build.7', 0],
  ['2.0.0', '2.0.0', 0],
  ['1.0.0-alpha', '1.0.0-alpha.1', -1],
  ['1.0.0-alpha.1', '1.0.0-alpha.beta', -1],
  ['1.0.0-alpha.beta', '1.0.0-beta', -1],
  ['1.0.0-beta', '1.0.0-beta.2', -1],
  ['1.0.0-beta.2', '1.0.0-beta.11', -1],
  ['1.0.0-beta.11', '1.0.0-rc.1', -1],
  ['1.0.0-rc.1', '1.0.0', -1],
  ['1.0.0', '1.0.0-rc.1', 1],
  ['1.0.0-1', '1.0.0-a', -1],
  ['1.0.0-A', '1.0.0-a', -1],
  ['1.0.0-a.b.c', '1.0.0-a.b', 1],
  ['1.0.0-rc.1+build.1', '1.0.0-rc.1+build.2', 0],
  ['9223372036854775807.0.0', '9223372036854775806.9.9', 1],
  ['1.2.3-99999999999999999999.1', '1.2.3-99999999999999999998.2', -1],
  ['1.2', '1.2.0', undefined],
  ['1.2.0', 'x', undefined],
  ['01.2.3', '1.2.3', undefined],
];

const text = (v: unknown) =>
  v instanceof ArrayBuffer ? new TextDecoder().decode(new Uint8Array(v)) : v;

describe('time.parse_rfc3339_ns', () => {
  it.each(TIMES)('%j is %s', (input, want) => {
    expect(parseRfc3339Ns(input)).toBe(want);
    const raw = GATE_BUILTINS['time.parse_rfc3339_ns']!(input);
    // exact int64 as JSON text; undefined (the call is undefined) where OPA raises an error
    expect(raw === undefined ? undefined : text(raw)).toBe(want?.toString());
  });

  it('is undefined for anything but a string', () => {
    for (const v of [1795176000, null, true, ['2026-11-20T12:00:00Z'], {}])
      expect(GATE_BUILTINS['time.parse_rfc3339_ns']!(v)).toBeUndefined();
  });

  it('returns a fresh answer for every call (the scratch buffer is rewritten, not shared)', () => {
    const f = GATE_BUILTINS['time.parse_rfc3339_ns']!;
    expect(text(f('2026-11-20T12:00:00Z'))).toBe('1795176000000000000');
    expect(text(f('2026-11-21T12:00:00Z'))).toBe('1795262400000000000');
    expect(text(f('1970-01-01T00:00:01Z'))).toBe('1000000000');
  });
});

describe('semver.is_valid and semver.compare', () => {
  it.each(VERSIONS)('is_valid(%j) is %s', (v, want) => {
    expect(semverIsValid(v)).toBe(want);
    expect(text(GATE_BUILTINS['semver.is_valid']!(v))).toBe(String(want));
  });

  it('is_valid is false for anything but a string', () => {
    for (const v of [1, null, true, ['1.2.3'], {}]) expect(semverIsValid(v)).toBe(false);
  });

  it.each(COMPARISONS)('compare(%j, %j) is %s', (a, b, want) => {
    expect(semverCompare(a, b)).toBe(want);
    const raw = GATE_BUILTINS['semver.compare']!(a, b);
    expect(raw === undefined ? undefined : Number(text(raw))).toBe(want);
    if (want !== undefined) expect(semverCompare(b, a)).toBe(-want || 0);
  });

  it('compare is undefined unless both are strings', () => {
    expect(semverCompare(1, '1.2.3')).toBeUndefined();
    expect(semverCompare('1.2.3', null)).toBeUndefined();
  });

  it('ends where OPA never returns: numeric identifiers that both clamp to MaxInt64', () => {
    // OPA v1.22.2 loops forever on this pair (both identifiers parse as math.MaxInt64 and its
    // loop never reaches an end); the gate answers 0, the order of the clamped values.
    expect(semverCompare('1.2.3-99999999999999999999', '1.2.3-99999999999999999998')).toBe(0);
  });
});

describe('against the real opa', () => {
  const opa = findOpa();
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-builtins-'));

  /** Generated inputs around the interesting shapes: mutated valid strings. */
  function corpus() {
    const digit = fc.integer({ min: 0, max: 9 }).map(String);
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
    const time = fc
      .record({
        year: fc.integer({ min: 1670, max: 2270 }).map(String),
        month: two(13),
        day: two(32),
        hour: fc.oneof(two(25), fc.integer({ min: 0, max: 9 }).map(String)),
        minute: two(61),
        second: two(61),
        fraction: fc.option(
          fc.tuple(fc.constantFrom('.', ','), fc.array(digit, { minLength: 0, maxLength: 12 })),
        ),
        zone: fc.oneof(
          fc.constantFrom('Z', 'z', ''),
          fc.tuple(fc.constantFrom('+', '-'), two(26), two(62)).map(([s, h, m]) => s + h + ':' + m),
        ),
        separator: fc.constantFrom('T', 'T', 'T', 't', ' '),
      })
      .map(
        (t) =>
          `${t.year}-${t.month}-${t.day}${t.separator}${t.hour}:${t.minute}:${t.second}` +
          (t.fraction ? t.fraction[0] + t.fraction[1].join('') : '') +
          t.zone,
      );
    const number = fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 12 }).map(String), weight: 9 },
      { arbitrary: fc.constantFrom('01', '00', '9223372036854775808'), weight: 1 },
    );
    const identifier = fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 20 }).map(String), weight: 4 },
      { arbitrary: fc.constantFrom('alpha', 'beta', 'rc', 'x-y', '0a', 'A', '--'), weight: 4 },
      { arbitrary: fc.constantFrom('01', '', 'a_b'), weight: 1 },
    );
    const version = fc
      .record({
        v: fc.constantFrom('', '', 'v'),
        core: fc.oneof(
          { arbitrary: fc.array(number, { minLength: 3, maxLength: 3 }), weight: 9 },
          { arbitrary: fc.array(number, { minLength: 1, maxLength: 4 }), weight: 1 },
        ),
        pre: fc.option(fc.array(identifier, { minLength: 1, maxLength: 3 })),
        build: fc.option(fc.array(identifier, { minLength: 1, maxLength: 2 })),
      })
      .map(
        (v) =>
          v.v +
          v.core.join('.') +
          (v.pre ? '-' + v.pre.join('.') : '') +
          (v.build ? '+' + v.build.join('.') : ''),
      );
    const times = fc.sample(time, { numRuns: 1500, seed: 2026 });
    const versions = fc.sample(version, { numRuns: 600, seed: 2026 });
    const pairs = fc.sample(fc.tuple(fc.constantFrom(...versions), fc.constantFrom(...versions)), {
      numRuns: 1500,
      seed: 7,
    });
    return { times, versions, pairs };
  }

  it('answers as opa eval does on generated inputs', () => {
    const input = corpus();
    const rego = [
      'package t',
      '',
      // json.marshal keeps nanoseconds exact (JSON numbers would go through a double here)
      'times := {s: json.marshal(ns) | some s in input.times; ns := time.parse_rfc3339_ns(s)}',
      '',
      'valid := {v: semver.is_valid(v) | some v in input.versions}',
      '',
      'compare := [[p[0], p[1], c] | some p in input.pairs; c := semver.compare(p[0], p[1])]',
      '',
    ].join('\n');
    writeFileSync(path.join(dir, 't.rego'), rego);
    writeFileSync(path.join(dir, 'input.json'), JSON.stringify(input));
    const out = execFileSync(opa, [
      'eval',
      '--format',
      'json',
      '-d',
      path.join(dir, 't.rego'),
      '-i',
      path.join(dir, 'input.json'),
      'data.t',
    ]).toString('utf8');
    const got = JSON.parse(out).result[0].expressions[0].value as {
      times: Record<string, string>;
      valid: Record<string, boolean>;
      compare: Array<[string, string, number]>;
    };
    let parsed = 0;
    for (const s of input.times) {
      expect(parseRfc3339Ns(s)?.toString(), s).toBe(got.times[s]);
      if (got.times[s] !== undefined) parsed++;
    }
    expect(parsed).toBeGreaterThan(200); // the corpus reaches both outcomes
    for (const v of input.versions) expect(semverIsValid(v), v).toBe(got.valid[v]);
    expect(Object.values(got.valid).filter(Boolean).length).toBeGreaterThan(100);
    const compared = new Map(got.compare.map(([a, b, c]) => [`${a} ${b}`, c]));
    for (const [a, b] of input.pairs)
      expect(semverCompare(a, b), `${a} ${b}`).toBe(compared.get(`${a} ${b}`));
    expect(compared.size).toBeGreaterThan(100);
  }, 60_000);

  it('reach a compiled policy: exact nanoseconds, and undefined where OPA errs', async () => {
    const policyDir = mkdtempSync(path.join(dir, 'policy-'));
    writeFileSync(
      path.join(policyDir, 'p.rego'),
      [
        'package gate',
        '',
        'now := time.parse_rfc3339_ns(input.effectiveTime)',
        '',
        'unreadable if not time.parse_rfc3339_ns(input.bad)',
        '',
        'later := now - time.parse_rfc3339_ns("2026-11-20T11:59:59.999999999Z")',
        '',
        'order := semver.compare(input.a, input.b)',
        '',
        'incomparable if not semver.compare(input.a, input.bad)',
        '',
        'decision := {"allow": true, "violations": [], "warnings": [], "rules": [json.marshal([now, later, order, unreadable, incomparable, semver.is_valid(input.a)])]}',
        '',
      ].join('\n'),
    );
    const policy = await loadCompiledPolicy(policyDir); // accepted: the gate provides them
    const input = {
      effectiveTime: '2262-04-11T23:47:16.854775807Z',
      bad: 'soon',
      a: '1.0.0-rc.1',
      b: '1.0.0',
    };
    const fromWasm = policy.evaluate(input).rules[0];
    expect(fromWasm).toBe('[9223372036854775807,7428196036854775808,-1,true,true,true]');
    const inputFile = path.join(dir, 'policy-input.json');
    writeFileSync(inputFile, JSON.stringify(input));
    const fromGo = execFileSync(opa, [
      'eval',
      '--format',
      'raw',
      '-d',
      policyDir,
      '-i',
      inputFile,
      'data.gate.decision.rules[0]',
    ])
      .toString('utf8')
      .trim();
    expect(fromWasm).toBe(fromGo);
  }, 120_000);
});
