import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { PolicyError, type GateErrorCode } from '../errors.js';
import { packagePath } from '../util/paths.js';

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const cache = new Map<string, ValidateFunction>();

/** Compiles a schema from schemas/ once and returns a checker that throws a coded error. */
export function schemaChecker(
  file: string,
  code: GateErrorCode,
  what: string,
): (value: unknown) => void {
  return (value) => {
    let check = cache.get(file);
    if (!check) {
      const load = (f: string) =>
        JSON.parse(readFileSync(packagePath('schemas', f), 'utf8')) as object;
      const ajv = new Ajv2020({ allErrors: false, strict: false });
      addFormats(ajv); // date-time, uri, uuid: checked, not ignored
      // schemas that refer to another by its $id (decision -> policy output)
      if (file !== 'policy-output.schema.json') ajv.addSchema(load('policy-output.schema.json'));
      check = ajv.compile(load(file));
      cache.set(file, check);
    }
    if (!check(value)) {
      const e = check.errors?.[0];
      throw new PolicyError(
        code,
        `${what} ${e?.instancePath || '/'}: ${e?.message ?? 'is invalid'}`,
      );
    }
  };
}
