import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { VerifyError } from '../errors.js';
import { HEX_LENGTH } from '../subject.js';
import { clip, jsonDepthExceeds } from '../util/input.js';
import { validatorFor } from '../util/schemas.js';
import type { ArtifactDigest, InTotoStatement, InTotoSubject } from './types.js';

export const STATEMENT_TYPE_V1 = 'https://in-toto.io/Statement/v1';
export const STATEMENT_TYPE_V01 = 'https://in-toto.io/Statement/v0.1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';

// Schemas by $id, compiled on first use (the registry keeps each compiled validator).
const STATEMENT_SCHEMAS: ReadonlyMap<string, string> = new Map([
  [STATEMENT_TYPE_V1, 'urn:gate:schema:in-toto-statement-v1'],
  [STATEMENT_TYPE_V01, 'urn:gate:schema:in-toto-statement-v0.1'],
]);
const PREDICATE_SCHEMAS: ReadonlyMap<string, string> = new Map([
  [SLSA_PROVENANCE_V1, 'urn:gate:schema:slsa-provenance-v1'],
]);
const RESOURCE_DESCRIPTOR = 'urn:gate:schema:in-toto-statement-v1#/$defs/ResourceDescriptor';

/**
 * Levels of nesting a statement may have (real ones have a dozen; SBOMs a few dozen). A signed
 * payload nested 100,000 levels overflowed the stack of the parse below: an uncoded RangeError
 * out of verifyAttestation (attack corpus, issue 12). Counted on the text, without recursion.
 */
export const MAX_STATEMENT_DEPTH = 256;

/**
 * Parses a DSSE payload as an in-toto Statement (v1 or v0.1) and validates it against the
 * schema its `_type` selects. Throws INPUT_MALFORMED_JSON or STATEMENT_INVALID.
 */
export function parseStatement(payload: Buffer | string): InTotoStatement {
  const text = typeof payload === 'string' ? payload : decodeUtf8(payload);
  if (jsonDepthExceeds(text, MAX_STATEMENT_DEPTH)) {
    throw new VerifyError(
      'INPUT_TOO_DEEP',
      `statement nests more than ${MAX_STATEMENT_DEPTH} levels`,
    );
  }
  const value = parseJson(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VerifyError('STATEMENT_INVALID', 'statement: must be a json object');
  }
  const type = (value as Record<string, unknown>)['_type'];
  if (typeof type !== 'string') {
    throw new VerifyError('STATEMENT_INVALID', 'statement /_type: must be a string');
  }
  const schema = STATEMENT_SCHEMAS.get(type);
  if (schema === undefined) {
    throw new VerifyError('STATEMENT_INVALID', `unsupported statement type: ${clip(type, 100)}`);
  }
  check(validatorFor(schema), value, 'statement');
  return value as InTotoStatement;
}

/** Validates one in-toto v1 ResourceDescriptor. Throws STATEMENT_INVALID. */
export function validateResourceDescriptor(rd: unknown): void {
  check(validatorFor(RESOURCE_DESCRIPTOR), rd, 'resource descriptor');
}

/**
 * Validates a statement's predicate when gate ships a schema for its type (SLSA Provenance v1).
 * Returns false, without checking anything, for other types. Throws STATEMENT_INVALID.
 */
export function validatePredicate(predicateType: string, predicate: unknown): boolean {
  const schema = PREDICATE_SCHEMAS.get(predicateType);
  if (schema === undefined) return false;
  check(validatorFor(schema), predicate, 'statement', '/predicate');
  return true;
}

/**
 * The first subject whose digest set carries `want`'s algorithm with an equal value. Every
 * subject is considered, not only the first. Throws SUBJECT_MISMATCH when none does.
 */
export function matchSubject(statement: InTotoStatement, want: ArtifactDigest): InTotoSubject {
  if (!Object.hasOwn(HEX_LENGTH, want.algorithm)) {
    throw new VerifyError(
      'DIGEST_UNSUPPORTED',
      `unsupported digest algorithm: ${clip(String(want.algorithm), 40)}`,
    );
  }
  const wanted = want.hex.toLowerCase();
  const match = statement.subject.find(
    (s) => digestOf(s, want.algorithm)?.toLowerCase() === wanted,
  );
  if (match !== undefined) return match;
  throw new VerifyError(
    'SUBJECT_MISMATCH',
    `no subject of the statement has ${want.algorithm}:${clip(wanted, 128)} (subjects: ${listSubjects(statement.subject, want.algorithm)})`,
  );
}

function decodeUtf8(bytes: Buffer): string {
  try {
    // fatal: a payload that is not UTF-8 is rejected, not silently repaired with U+FFFD
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new VerifyError('INPUT_MALFORMED_JSON', 'statement: payload is not valid utf-8', {
      cause: err,
    });
  }
}

function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VerifyError('INPUT_MALFORMED_JSON', 'statement: payload is not valid json', {
      cause: err,
    });
  }
  const bad = findSuspiciousKey(text);
  if (bad !== undefined) throw new VerifyError('STATEMENT_INVALID', `statement: ${bad}`);
  return value;
}

/**
 * Duplicate keys are resolved differently by different parsers (JSON.parse keeps the last,
 * others the first or fail), so a statement could mean one thing here and another elsewhere:
 * refuse it. "__proto__" keys are harmless to JSON.parse but become prototype pollution the
 * moment later code copies the object with Object.assign or a naive merge: refuse them too.
 * Runs only on text JSON.parse accepted, so it needs no error handling; it is iterative, so
 * deep nesting cannot overflow the stack.
 */
function findSuspiciousKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      const keys = objects.at(-1);
      if (expectKey && keys) {
        const raw = text.slice(i + 1, end);
        // only escaped keys need decoding: "\u0073ha256" and "sha256" are the same key
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (key === '__proto__') return 'a "__proto__" key is not allowed';
        if (keys.has(key)) return `duplicate key "${clip(key, 60)}"`;
        keys.add(key);
      }
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      objects.push(c === '{' ? new Set() : null);
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      objects.pop();
    } else if (c === ',') {
      expectKey = objects.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/** Index of the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

function check(validate: ValidateFunction, value: unknown, what: string, base = ''): void {
  if (validate(value)) return;
  // allErrors is off, so ajv stopped at the first failing keyword; for anyOf it also keeps each
  // branch's error before the anyOf's own, so the last error is the outermost, meaningful one.
  const err = validate.errors?.at(-1);
  const where = base + (err === undefined ? '' : pointerOf(err));
  const why = err === undefined ? 'is invalid' : reasonOf(err);
  throw new VerifyError(
    'STATEMENT_INVALID',
    `${what}${where === '' ? '' : ' ' + clip(where, 200)}: ${why}`,
  );
}

function pointerOf(err: ErrorObject): string {
  if (err.keyword !== 'required') return err.instancePath;
  const missing = String((err.params as { missingProperty?: unknown }).missingProperty);
  return `${err.instancePath}/${missing.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function reasonOf(err: ErrorObject): string {
  const custom = (err.parentSchema?.['x-messages'] as Record<string, unknown> | undefined)?.[
    err.keyword
  ];
  if (typeof custom === 'string') return custom;
  if (err.keyword === 'required') return 'is required';
  if (
    ['minItems', 'minProperties', 'minLength'].includes(err.keyword) &&
    (err.params as { limit?: unknown }).limit === 1
  ) {
    return 'must not be empty';
  }
  if (err.keyword === 'const') {
    return `must be ${clip(JSON.stringify((err.params as { allowedValue?: unknown }).allowedValue), 80)}`;
  }
  return (err.message ?? 'is invalid').toLowerCase();
}

function digestOf(subject: InTotoSubject, algorithm: string): string | undefined {
  const digest: unknown = subject.digest;
  if (typeof digest !== 'object' || digest === null || !Object.hasOwn(digest, algorithm))
    return undefined;
  const value = (digest as Record<string, unknown>)[algorithm];
  return typeof value === 'string' ? value : undefined;
}

const LISTED_SUBJECTS = 3;

function listSubjects(subjects: InTotoSubject[], algorithm: string): string {
  if (subjects.length === 0) return 'none';
  const listed = subjects.slice(0, LISTED_SUBJECTS).map((s) => describeSubject(s, algorithm));
  const more = subjects.length - listed.length;
  return listed.join(', ') + (more > 0 ? `, and ${more} more` : '');
}

function describeSubject(subject: InTotoSubject, algorithm: string): string {
  const label = clip(String(subject.name ?? subject.uri ?? '(unnamed)'), 40);
  // show the requested algorithm when present, so the reader sees the value that differed
  const algs =
    typeof subject.digest === 'object' && subject.digest !== null
      ? Object.keys(subject.digest)
      : [];
  const alg = algs.includes(algorithm) ? algorithm : algs[0];
  if (alg === undefined) return `${label} (no digest)`;
  return `${label} ${clip(alg, 20)}:${clip(String(digestOf(subject, alg)), 12)}`;
}
