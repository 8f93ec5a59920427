import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GateError } from '../../src/errors.js';
import {
  SLSA_PROVENANCE_V1,
  matchSubject,
  parseStatement,
  validatePredicate,
  validateResourceDescriptor,
} from '../../src/verify/statement.js';
import { parseDigest, type ArtifactDigest } from '../../src/subject.js';
import type { InTotoStatement } from '../../src/verify/types.js';

const V1 = 'https://in-toto.io/Statement/v1';
const V01 = 'https://in-toto.io/Statement/v0.1';
const SHA256_A = 'a'.repeat(64);
const SHA256_B = 'b'.repeat(64);
const SHA512_C = 'c'.repeat(128);
const SHA1_D = 'd'.repeat(40);

/** The error `fn` throws; fails the test when it throws nothing or something not a GateError. */
function thrown(fn: () => unknown): GateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GateError);
    return err as GateError;
  }
  throw new Error('expected a GateError, nothing was thrown');
}

function statement(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _type: V1,
    subject: [{ name: 'app', digest: { sha256: SHA256_A } }],
    predicateType: 'https://example.com/predicate/v1',
    predicate: {},
    ...overrides,
  };
}

const parse = (value: unknown): InTotoStatement => parseStatement(JSON.stringify(value));

// --- the reference implementation's vectors -------------------------------------------------

interface Vector {
  file: string;
  test?: string;
  const?: string;
  json: unknown;
  expected_error?: string;
  used_by?: { test: string; expected_error: string }[];
}

type Kind = 'statement' | 'resource descriptor' | 'provenance predicate';

interface Case {
  name: string;
  kind: Kind;
  json: unknown;
  /** Go sentinel error name, or 'nil' when the reference Validate() accepts the document */
  expected: string;
}

const vectors = (
  JSON.parse(
    readFileSync(
      new URL('../fixtures/in-toto/VALIDATION_VECTORS.extracted.json', import.meta.url),
      'utf8',
    ),
  ) as { vectors: Vector[] }
).vectors;

// A vector of an unforeseen kind fails here rather than being skipped without notice.
function kindOf(v: Vector): Kind {
  if (typeof v.json === 'object' && v.json !== null && '_type' in v.json) return 'statement';
  if (v.file.endsWith('/resource_descriptor_test.go')) return 'resource descriptor';
  if (v.file.includes('/predicates/provenance/v1/')) return 'provenance predicate';
  throw new Error(`no schema applies to vector ${v.test ?? v.const} from ${v.file}`);
}

function casesOf(v: Vector): Case[] {
  const kind = kindOf(v);
  const type = kind === 'statement' ? ` [${(v.json as { _type: unknown })._type}]` : '';
  const uses = v.used_by ?? [{ test: v.test ?? '?', expected_error: v.expected_error ?? '?' }];
  return uses.map((u) => ({
    name: `${u.test}${v.const ? ` (${v.const})` : ''}${type}`,
    kind,
    json: v.json,
    expected: u.expected_error,
  }));
}

const cases = vectors.flatMap(casesOf);

/** What our message must say for each Go sentinel error: the failing JSON pointer and why. */
const EXPECTED_MESSAGE: Record<string, RegExp> = {
  ErrSubjectRequired: /^statement \/subject: must not be empty$/,
  // a Statement subject needs a digest in any case: that rule is checked, and named, first
  ErrRDRequiredField:
    /^(statement \/subject\/0\/digest: is required|resource descriptor: must set at least one of uri, digest or content)$/,
  ErrDigestRequired: /^statement \/subject\/0\/digest: is required$/,
  ErrPredicateTypeRequired: /^statement \/predicateType: must not be empty$/,
  ErrPredicateRequired: /^statement \/predicate: is required$/,
  ErrInvalidStatementType: /^unsupported statement type: https:\/\//,
  ErrInvalidDigestEncoding: /^resource descriptor \/digest\/sha256: must be 64 lowercase hex/,
  ErrIncorrectDigestLength: /^resource descriptor \/digest\/(sha256|gitCommit): must be \d+/,
  ErrBuildDefinitionRequired: /^statement \/predicate\/buildDefinition\//,
  ErrBuildTypeRequired: /^statement \/predicate\/buildDefinition\/buildType: is required$/,
  ErrExternalParamsRequired:
    /^statement \/predicate\/buildDefinition\/externalParameters: is required$/,
  ErrRunDetailsRequired: /^statement \/predicate\/runDetails\//,
  ErrBuilderRequired: /^statement \/predicate\/runDetails\/builder\//,
  ErrBuilderIdRequired: /^statement \/predicate\/runDetails\/builder\/id: must not be empty$/,
};

function runCase(c: Case): void {
  if (c.kind === 'statement') parse(c.json);
  else if (c.kind === 'resource descriptor') validateResourceDescriptor(c.json);
  else expect(validatePredicate(SLSA_PROVENANCE_V1, c.json)).toBe(true);
}

describe('when given the in-toto reference vectors', () => {
  it('has vectors of every kind', () => {
    expect(new Set(cases.map((c) => c.kind)).size).toBe(3);
  });

  for (const c of cases.filter((x) => x.expected === 'nil')) {
    it(`accepts the ${c.kind} ${c.name}`, () => {
      expect(() => runCase(c)).not.toThrow();
    });
  }

  for (const c of cases.filter((x) => x.expected !== 'nil')) {
    it(`rejects the ${c.kind} ${c.name} (${c.expected})`, () => {
      const err = thrown(() => runCase(c));
      expect(err.code).toBe('STATEMENT_INVALID');
      expect(err.message).toMatch(EXPECTED_MESSAGE[c.expected] ?? /^no expectation for this$/);
    });
  }
});

// --- parseStatement -------------------------------------------------------------------------

describe('when the payload is not a json object', () => {
  it('rejects malformed json as INPUT_MALFORMED_JSON', () => {
    expect(thrown(() => parseStatement('{"_type":')).code).toBe('INPUT_MALFORMED_JSON');
  });

  it('rejects bytes that are not utf-8 as INPUT_MALFORMED_JSON', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"_type":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    expect(thrown(() => parseStatement(bytes)).code).toBe('INPUT_MALFORMED_JSON');
  });

  it.each(['[]', 'null', '42', '"text"'])('rejects %s as STATEMENT_INVALID', (text) => {
    const err = thrown(() => parseStatement(text));
    expect(err.code).toBe('STATEMENT_INVALID');
    expect(err.message).toBe('statement: must be a json object');
  });

  it('accepts a buffer holding a valid statement', () => {
    const st = parseStatement(Buffer.from(JSON.stringify(statement())));
    expect(st.predicateType).toBe('https://example.com/predicate/v1');
  });
});

describe('when the statement type is missing or unknown', () => {
  it('rejects a missing _type', () => {
    const err = thrown(() => parse(statement({ _type: undefined })));
    expect(err.message).toBe('statement /_type: must be a string');
  });

  it('rejects an unknown _type naming it', () => {
    const err = thrown(() => parse(statement({ _type: 'https://in-toto.io/Statement/v2' })));
    expect(err.code).toBe('STATEMENT_INVALID');
    expect(err.message).toBe('unsupported statement type: https://in-toto.io/Statement/v2');
  });

  it('rejects an unknown _type without echoing control characters', () => {
    const err = thrown(() => parse(statement({ _type: 'evil\ntype' })));
    expect(err.message).toBe('unsupported statement type: evil?type');
  });
});

describe('when a v1 subject digest is checked', () => {
  const withDigest = (digest: unknown): Record<string, unknown> =>
    statement({ subject: [{ name: 'app', digest }] });

  it('rejects an empty digest set', () => {
    expect(thrown(() => parse(withDigest({}))).message).toBe(
      'statement /subject/0/digest: must not be empty',
    );
  });

  it('rejects a subject without digest, even with a uri', () => {
    const st = statement({ subject: [{ uri: 'pkg:npm/app@1' }] });
    expect(thrown(() => parse(st)).message).toBe('statement /subject/0/digest: is required');
  });

  it.each([
    ['uppercase', SHA256_A.toUpperCase()],
    ['short', 'abc123'],
    ['non-hex', 'z'.repeat(64)],
    ['sha512-sized', SHA512_C],
  ])('rejects a %s sha256 value', (_label, value) => {
    expect(thrown(() => parse(withDigest({ sha256: value }))).message).toBe(
      'statement /subject/0/digest/sha256: must be 64 lowercase hex characters',
    );
  });

  it('rejects a non-string digest value', () => {
    expect(thrown(() => parse(withDigest({ custom: 1 }))).message).toBe(
      'statement /subject/0/digest/custom: must be string',
    );
  });

  it('rejects an empty value for an unknown algorithm', () => {
    expect(thrown(() => parse(withDigest({ custom: '' }))).message).toBe(
      'statement /subject/0/digest/custom: must not be empty',
    );
  });

  it.each([
    ['sha512', SHA512_C],
    ['sha1', SHA1_D],
    ['sha384', 'e'.repeat(96)],
    ['sha3_224', 'e'.repeat(56)],
    ['md5', 'e'.repeat(32)],
    ['gitCommit', SHA1_D],
    ['gitTree', SHA256_A],
    ['dirHash', SHA256_A],
    ['blake2b', 'e'.repeat(128)],
    ['shake256', 'e'.repeat(20)],
    ['arn', 'arn:aws:ec2:region:123:image/ami-123abcd'],
  ])('accepts a well-formed %s digest', (alg, value) => {
    expect(parse(withDigest({ [alg]: value })).subject[0]?.digest[alg]).toBe(value);
  });

  it.each([
    ['gitCommit', 'e'.repeat(50)],
    ['blake2b', 'e'.repeat(130)],
    ['shake128', 'eee'],
    ['ripemd160', SHA256_A],
  ])('rejects a malformed %s digest', (alg, value) => {
    expect(thrown(() => parse(withDigest({ [alg]: value }))).message).toMatch(
      new RegExp(`^statement /subject/0/digest/${alg}: must be .*lowercase hex`),
    );
  });
});

describe('when the rest of a v1 statement is checked', () => {
  it('accepts unrecognised fields, as the parsing rules require', () => {
    const st = parse(statement({ 'https://example.com/ext': 1 }));
    expect(st['https://example.com/ext']).toBe(1);
  });

  it('accepts a subject with content and annotations', () => {
    const subject = [{ digest: { sha256: SHA256_A }, content: 'aGk=', annotations: { a: 1 } }];
    expect(() => parse(statement({ subject }))).not.toThrow();
  });

  it('rejects subject content that is not base64', () => {
    const subject = [{ digest: { sha256: SHA256_A }, content: 'not base64!' }];
    expect(thrown(() => parse(statement({ subject }))).message).toBe(
      'statement /subject/0/content: must be base64',
    );
  });

  it('rejects a bad second subject', () => {
    const subject = [{ digest: { sha256: SHA256_A } }, { name: 'x', digest: { sha256: 'ab' } }];
    expect(thrown(() => parse(statement({ subject }))).message).toMatch(
      /^statement \/subject\/1\/digest\/sha256: /,
    );
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a string', 'x'],
  ])('rejects a predicate that is %s', (_label, predicate) => {
    expect(thrown(() => parse(statement({ predicate }))).message).toBe(
      'statement /predicate: must be object',
    );
  });

  it('rejects a predicate type with whitespace', () => {
    expect(thrown(() => parse(statement({ predicateType: 'a b' }))).message).toBe(
      'statement /predicateType: must be a uri without whitespace',
    );
  });

  it('rejects a subject that is not an array', () => {
    expect(thrown(() => parse(statement({ subject: {} }))).message).toBe(
      'statement /subject: must be array',
    );
  });
});

describe('when the statement is v0.1', () => {
  const v01 = (subject: unknown): Record<string, unknown> => statement({ _type: V01, subject });

  it('accepts a named subject with a digest', () => {
    expect(parse(v01([{ name: 'app', digest: { sha256: SHA256_A } }]))._type).toBe(V01);
  });

  it('rejects a subject without a name, which v0.1 requires', () => {
    expect(thrown(() => parse(v01([{ digest: { sha256: SHA256_A } }]))).message).toBe(
      'statement /subject/0/name: is required',
    );
  });

  it('rejects an empty name', () => {
    expect(thrown(() => parse(v01([{ name: '', digest: { sha256: SHA256_A } }]))).message).toBe(
      'statement /subject/0/name: must not be empty',
    );
  });

  it('rejects an empty digest set', () => {
    expect(thrown(() => parse(v01([{ name: 'app', digest: {} }]))).message).toBe(
      'statement /subject/0/digest: must not be empty',
    );
  });

  it('rejects a malformed sha256', () => {
    expect(thrown(() => parse(v01([{ name: 'app', digest: { sha256: 'abc' } }]))).message).toBe(
      'statement /subject/0/digest/sha256: must be 64 lowercase hex characters',
    );
  });
});

describe('when keys are duplicated or named __proto__', () => {
  const base = JSON.stringify(statement());

  it('rejects a duplicated top-level key', () => {
    const text = base.replace('{', `{"predicateType":"https://evil.example/x",`);
    const err = thrown(() => parseStatement(text));
    expect(err.code).toBe('STATEMENT_INVALID');
    expect(err.message).toBe('statement: duplicate key "predicateType"');
  });

  it('rejects a duplicated digest algorithm spelled with an escape', () => {
    const text = base.replace('"sha256":', `"\\u0073ha256":"${SHA256_B}","sha256":`);
    expect(thrown(() => parseStatement(text)).message).toBe('statement: duplicate key "sha256"');
  });

  it('rejects a __proto__ key at the top level', () => {
    const text = base.replace('{', '{"__proto__":{"admin":true},');
    expect(thrown(() => parseStatement(text)).message).toBe(
      'statement: a "__proto__" key is not allowed',
    );
  });

  it('rejects a __proto__ key deep in the predicate', () => {
    const text = JSON.stringify(statement({ predicate: { a: [{ b: 1 }] } })).replace(
      '{"b":1}',
      '{"b":1,"__proto__":{}}',
    );
    expect(thrown(() => parseStatement(text)).code).toBe('STATEMENT_INVALID');
  });

  it('accepts the same key in sibling objects and braces inside strings', () => {
    const subject = [
      { name: 'a"{,}[', digest: { sha256: SHA256_A } },
      { name: 'b\\', digest: { sha256: SHA256_B } },
    ];
    const text = JSON.stringify(statement({ subject, predicate: { x: ['{"x":1}', { x: 2 }] } }));
    expect(parseStatement(text).subject).toHaveLength(2);
  });
});

// --- validatePredicate ----------------------------------------------------------------------

describe('when validating a provenance predicate', () => {
  const provenance = (runDetails: Record<string, unknown> = {}): Record<string, unknown> => ({
    buildDefinition: {
      buildType: 'https://example.com/build/v1',
      externalParameters: {},
      resolvedDependencies: [
        { uri: 'git+https://example.com/repo', digest: { gitCommit: SHA1_D } },
      ],
    },
    runDetails: { builder: { id: 'https://example.com/builder' }, ...runDetails },
  });

  it('returns false, checking nothing, for a predicate type without a schema', () => {
    expect(validatePredicate('https://example.com/other', 'anything')).toBe(false);
  });

  it('accepts optional fields set to null, which the spec treats as unset', () => {
    const p = provenance({ metadata: null, byproducts: null });
    expect(validatePredicate(SLSA_PROVENANCE_V1, p)).toBe(true);
  });

  it('accepts utc timestamps', () => {
    const metadata = { startedOn: '2024-01-02T03:04:05Z', finishedOn: '2024-01-02T03:04:05.5Z' };
    expect(validatePredicate(SLSA_PROVENANCE_V1, provenance({ metadata }))).toBe(true);
  });

  it('rejects a timestamp with an offset', () => {
    const metadata = { startedOn: '2024-01-02T03:04:05+02:00' };
    const err = thrown(() => validatePredicate(SLSA_PROVENANCE_V1, provenance({ metadata })));
    expect(err.message).toBe(
      'statement /predicate/runDetails/metadata/startedOn: must be an rfc 3339 timestamp in utc (z)',
    );
  });

  it('rejects a byproduct that is not a valid resource descriptor', () => {
    const byproducts = [{ name: 'log', digest: { sha256: 'abc' } }];
    const err = thrown(() => validatePredicate(SLSA_PROVENANCE_V1, provenance({ byproducts })));
    expect(err.code).toBe('STATEMENT_INVALID');
    expect(err.message).toMatch(
      /^statement \/predicate\/runDetails\/byproducts\/0\/digest\/sha256: /,
    );
  });

  it('rejects a non-string builder version', () => {
    const builder = { id: 'https://example.com/builder', version: { tool: 1 } };
    const err = thrown(() => validatePredicate(SLSA_PROVENANCE_V1, provenance({ builder })));
    expect(err.message).toBe(
      'statement /predicate/runDetails/builder/version/tool: must be string',
    );
  });
});

// --- matchSubject ---------------------------------------------------------------------------

describe('when matching a subject', () => {
  const subjects = [
    { name: 'first', digest: { sha256: SHA256_A } },
    { name: 'second', digest: { sha256: SHA256_B, sha512: SHA512_C } },
    { name: 'legacy', digest: { sha1: SHA1_D } },
  ];
  const st = parse(statement({ subject: subjects }));
  const sha256 = (hex: string): ArtifactDigest => ({ algorithm: 'sha256', hex });

  it('finds a match on the second subject', () => {
    expect(matchSubject(st, sha256(SHA256_B)).name).toBe('second');
  });

  it('matches by sha512', () => {
    expect(matchSubject(st, { algorithm: 'sha512', hex: SHA512_C }).name).toBe('second');
  });

  it('matches uppercase hex input', () => {
    expect(matchSubject(st, sha256(SHA256_B.toUpperCase())).name).toBe('second');
  });

  it('matches an uppercase value in a statement that skipped the schema', () => {
    const raw = { ...st, subject: [{ name: 'up', digest: { sha256: SHA256_A.toUpperCase() } }] };
    expect(matchSubject(raw, sha256(SHA256_A)).name).toBe('up');
  });

  it('rejects a digest no subject has, listing the subjects', () => {
    const err = thrown(() => matchSubject(st, sha256('f'.repeat(64))));
    expect(err.code).toBe('SUBJECT_MISMATCH');
    expect(err.message).toBe(
      `no subject of the statement has sha256:${'f'.repeat(64)} (subjects: first sha256:aaaaaaaaaaaa..., second sha256:bbbbbbbbbbbb..., legacy sha1:dddddddddddd...)`,
    );
  });

  it('rejects a subject carrying only sha1, even with the same bytes', () => {
    const only = parse(statement({ subject: [{ name: 'legacy', digest: { sha1: SHA1_D } }] }));
    const err = thrown(() => matchSubject(only, sha256(SHA1_D + 'd'.repeat(24))));
    expect(err.code).toBe('SUBJECT_MISMATCH');
    expect(err.message).toMatch(/\(subjects: legacy sha1:dddddddddddd\.\.\.\)$/);
  });

  it('rejects sha512 when subjects carry only sha256', () => {
    const err = thrown(() => matchSubject(st, { algorithm: 'sha512', hex: 'a'.repeat(128) }));
    expect(err.code).toBe('SUBJECT_MISMATCH');
  });

  it('truncates a long subject list', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({
      name: `s${i}`,
      digest: { sha256: SHA256_A },
    }));
    const err = thrown(() => matchSubject(parse(statement({ subject: many })), sha256(SHA256_B)));
    expect(err.message).toMatch(/, s2 sha256:aaaaaaaaaaaa\.\.\., and 7 more\)$/);
  });

  it('rejects an unsupported algorithm as DIGEST_UNSUPPORTED', () => {
    const want = { algorithm: 'sha1', hex: SHA1_D } as unknown as ArtifactDigest;
    expect(thrown(() => matchSubject(st, want)).code).toBe('DIGEST_UNSUPPORTED');
  });
});

// --- parseDigest ----------------------------------------------------------------------------

describe('when parsing a digest argument', () => {
  it.each([
    [`sha256:${SHA256_A}`, { algorithm: 'sha256', hex: SHA256_A }],
    [`sha256:${SHA256_A.toUpperCase()}`, { algorithm: 'sha256', hex: SHA256_A }],
    [`sha512:${SHA512_C}`, { algorithm: 'sha512', hex: SHA512_C }],
    [`sha512:${'AbCd'.repeat(32)}`, { algorithm: 'sha512', hex: 'abcd'.repeat(32) }],
  ])('accepts %s', (input, want) => {
    expect(parseDigest(input)).toEqual(want);
  });

  it.each([
    ['empty', ''],
    ['bare hex', SHA256_A],
    ['sha1', `sha1:${SHA1_D}`],
    ['short sha256', `sha256:${SHA256_A.slice(1)}`],
    ['sha256 of sha512 length', `sha256:${SHA512_C}`],
    ['sha512 of sha256 length', `sha512:${SHA256_A}`],
    ['non-hex', `sha256:${'g'.repeat(64)}`],
    ['uppercase algorithm', `SHA256:${SHA256_A}`],
    ['trailing newline', `sha256:${SHA256_A}\n`],
    ['leading space', ` sha256:${SHA256_A}`],
    ['missing hex', 'sha256:'],
  ])('rejects %s as USAGE_ERROR', (_label, input) => {
    const err = thrown(() => parseDigest(input));
    expect(err.code).toBe('USAGE_ERROR');
    expect(err.message).not.toMatch(/\n/);
  });
});

// --- properties -----------------------------------------------------------------------------

/** Runs parseStatement; anything thrown must be a GateError with a one-line lowercase message. */
function parseOrGateError(payload: string | Buffer): void {
  try {
    parseStatement(payload);
  } catch (err) {
    if (!(err instanceof GateError)) throw err;
    if (!/^[a-z][^\n\r]*$/.test(err.message)) throw new Error(`bad message: ${err.message}`);
  }
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);

const statementLike = fc.record(
  {
    _type: fc.constantFrom(V1, V01, 'https://in-toto.io/Statement/v2'),
    subject: fc.array(
      fc.record(
        {
          name: fc.string(),
          uri: fc.string(),
          digest: fc.dictionary(
            fc.constantFrom('sha256', 'sha512', 'sha1', 'gitCommit', 'custom', '__proto__'),
            fc.oneof(hex64, fc.string(), fc.integer()),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    predicateType: fc.oneof(fc.string(), fc.constant(SLSA_PROVENANCE_V1)),
    predicate: fc.oneof(fc.object(), fc.jsonValue()),
  },
  { requiredKeys: [] },
);

describe('when given arbitrary input', () => {
  it('throws nothing but a GateError for any json value', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => parseOrGateError(JSON.stringify(v) ?? 'null')));
  });

  it('throws nothing but a GateError for any string', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => parseOrGateError(s)));
  });

  it('throws nothing but a GateError for any bytes', () => {
    fc.assert(fc.property(fc.uint8Array(), (b) => parseOrGateError(Buffer.from(b))));
  });

  it('throws nothing but a GateError for statement-like objects', () => {
    fc.assert(fc.property(statementLike, (v) => parseOrGateError(JSON.stringify(v))));
  });

  it('parses any valid statement and matches each of its subjects', () => {
    const subjects = fc.array(
      fc.record({ name: fc.string(), digest: fc.record({ sha256: hex64 }) }),
      {
        minLength: 1,
        maxLength: 5,
      },
    );
    fc.assert(
      fc.property(subjects, fc.nat(), (subject, pick) => {
        const st = parse(statement({ subject }));
        const want = subject[pick % subject.length]!.digest.sha256;
        expect(matchSubject(st, { algorithm: 'sha256', hex: want }).digest.sha256).toBe(want);
      }),
    );
  });
});
