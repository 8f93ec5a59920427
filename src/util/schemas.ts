import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { GateError, type GateErrorCode } from '../errors.js';
import { packagePath } from './paths.js';

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/**
 * The one schema registry: every file in schemas/, in one Ajv instance, so a schema may refer to
 * another by its $id (the decision names the policy output) and each compiles once, on first use.
 * strict: a schema the package ships that Ajv does not fully understand fails loudly in tests.
 * verbose: errors carry their parentSchema, where the in-toto schemas keep `x-messages` texts.
 * useDefaults: the configuration's defaults (gate-config.schema.json) are filled in while it is
 * checked; no other schema declares any.
 */
const ajv = new Ajv2020({
  allErrors: false,
  strict: true,
  // `required` inside anyOf/oneOf branches that name properties declared beside them is fine
  strictRequired: false,
  verbose: true,
  allowUnionTypes: true,
  useDefaults: true,
});
addFormats(ajv); // date-time, uri, uuid: checked, not ignored
ajv.addKeyword({ keyword: 'x-messages', schemaType: 'object' });

const FILES = readdirSync(packagePath('schemas')).filter((f) => f.endsWith('.schema.json'));
for (const file of FILES) {
  const schema = JSON.parse(readFileSync(packagePath('schemas', file), 'utf8')) as object;
  ajv.addSchema(schema, file);
}

/** The validator of a schema, by file name (`decision.schema.json`) or $id (with a #fragment). */
export function validatorFor(ref: string): ValidateFunction {
  const fn = ajv.getSchema(ref);
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
