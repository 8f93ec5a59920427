import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv2020, Options, ValidateFunction } from 'ajv/dist/2020.js';
import { GateError, type GateErrorCode } from '../errors.js';
import { packagePath } from './paths.js';

/**
 * The one schema registry: every file in schemas/, in one Ajv instance, so a schema may refer to
 * another by its $id (the decision names the policy output) and each compiles once, on first use.
 * strict: a schema the package ships that Ajv does not fully understand fails loudly in tests.
 * verbose: errors carry their parentSchema, where the in-toto schemas keep `x-messages` texts.
 * useDefaults: the configuration's defaults (gate-config.schema.json) are filled in while it is
 * checked; no other schema declares any.
 */
const OPTIONS = {
  allErrors: false,
  strict: true,
  // `required` inside anyOf/oneOf branches that name properties declared beside them is fine
  strictRequired: false,
  verbose: true,
  allowUnionTypes: true,
  useDefaults: true,
} as const satisfies Options;
/** The gate's own keywords, annotations Ajv leaves alone. */
const KEYWORDS = [{ keyword: 'x-messages', schemaType: 'object' }] as const;

const FILES = readdirSync(packagePath('schemas')).filter((f) => f.endsWith('.schema.json'));

// Ajv and ajv-formats are CommonJS, required when first needed: validators stay synchronous and
// a command that validates nothing (`gate --help`) does not load them (issue 11).
const require = createRequire(import.meta.url);

/**
 * A registry of every schema in schemas/. With `source`, each validator keeps its code, for
 * schema-codegen.ts to write them all out as one module when the package is built.
 */
export function createSchemaRegistry(source = false): Ajv2020 {
  const { Ajv2020 } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  const addFormats = require('ajv-formats') as (ajv: Ajv2020) => Ajv2020;
  const ajv = new Ajv2020({ ...OPTIONS, ...(source ? { code: { source: true } } : {}) });
  addFormats(ajv); // date-time, uri, uuid: checked, not ignored
  for (const k of KEYWORDS) ajv.addKeyword({ ...k });
  for (const file of FILES) {
    const schema = JSON.parse(readFileSync(packagePath('schemas', file), 'utf8')) as object;
    ajv.addSchema(schema, file);
  }
  return ajv;
}

/**
 * What the validators are made of: the schema files, the registry's options and keywords, and
 * the versions of Ajv and ajv-formats. Precompiled validators made of anything else are not used.
 */
export function schemasDigest(): string {
  const version = (name: string) =>
    (require(`${name}/package.json`) as { version: string }).version;
  const h = createHash('sha256').update(
    JSON.stringify({ OPTIONS, KEYWORDS, ajv: version('ajv'), formats: version('ajv-formats') }),
  );
  for (const file of [...FILES].sort()) {
    const bytes = readFileSync(packagePath('schemas', file));
    h.update(`\n${file} ${bytes.length}\n`).update(bytes);
  }
  return h.digest('hex');
}

/** The module schema-codegen.ts writes beside this one when the package is built. */
export const PRECOMPILED_MODULE = './schema-validators/index.cjs';

interface Precompiled {
  digest?: unknown;
  load?: (ref: string) => ValidateFunction | undefined;
}
let precompiled: Precompiled | null | undefined;
let registry: Ajv2020 | undefined;

/**
 * The validators compiled when the package was built (dist/util/schema-validators/), if they
 * were compiled from these very schemas: Ajv's own code for them, without the cost of making the
 * registry and compiling on every start. Absent (tests from src/, a build by tsc alone) or made
 * from other schemas, they are not used and the registry compiles as it always did.
 */
function precompiledValidators(): Precompiled | null {
  if (precompiled !== undefined) return precompiled;
  precompiled = null;
  let built: Precompiled;
  try {
    built = require(PRECOMPILED_MODULE) as Precompiled;
  } catch {
    return precompiled;
  }
  if (built.digest === schemasDigest() && typeof built.load === 'function') precompiled = built;
  return precompiled;
}

/** The validator of a schema, by file name (`decision.schema.json`) or $id (with a #fragment). */
export function validatorFor(ref: string): ValidateFunction {
  const built = precompiledValidators()?.load?.(ref);
  if (built !== undefined) return built;
  const fn = (registry ??= createSchemaRegistry()).getSchema(ref);
  if (fn === undefined) throw new Error(`schema ${ref} is not in schemas/`);
  return fn;
}

/** A checker that throws a coded error naming where the value first fails the schema. */
export function schemaChecker(
  file: string,
  code: GateErrorCode,
  what: string,
): (value: unknown) => void {
  return (value) => {
    const check = validatorFor(file);
    if (!check(value)) {
      const e = check.errors?.[0];
      throw new GateError(code, `${what} ${e?.instancePath || '/'}: ${e?.message ?? 'is invalid'}`);
    }
  };
}

/** The schema files the registry holds (for tests that check every one compiles). */
export const SCHEMA_FILES: readonly string[] = FILES;
