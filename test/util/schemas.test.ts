import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILES, schemaChecker, validatorFor } from '../../src/util/schemas.js';
import { packagePath } from '../../src/util/paths.js';

describe('the schema registry', () => {
  it('holds every file in schemas/, and each compiles in strict mode', () => {
    const files = readdirSync(packagePath('schemas')).filter((f) => f.endsWith('.schema.json'));
    expect([...SCHEMA_FILES].sort()).toEqual(files.sort());
    for (const f of files) expect(typeof validatorFor(f)).toBe('function');
  });

  it('finds a schema by its $id as well as by its file name', () => {
    expect(validatorFor('urn:gate:schema:decision')).toBe(validatorFor('decision.schema.json'));
  });

  it('throws a coded error naming where a value fails', () => {
    const check = schemaChecker(
      'break-glass-predicate.schema.json',
      'STATEMENT_INVALID',
      'request',
    );
    expect(() => check({ requestId: 1 })).toThrow(
      expect.objectContaining({
        code: 'STATEMENT_INVALID',
        message: expect.stringMatching(/^request \//),
      }),
    );
  });
});
