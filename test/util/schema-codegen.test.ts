import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { parse as parseYAML } from 'yaml';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { PRECOMPILED_FRAGMENTS, validatorModules } from '../../src/util/schema-codegen.js';
import {
  createSchemaRegistry,
  PRECOMPILED_MODULE,
  SCHEMA_FILES,
  schemasDigest,
} from '../../src/util/schemas.js';
import { FIXTURES } from '../helpers.js';

/**
 * The validators the build compiles (src/util/schema-codegen.ts) are Ajv's own: on every sample
 * document, and on each made worse, they answer as the registry compiled at run time does, with
 * the same errors and the same defaults filled in.
 */
interface Precompiled {
  digest: string;
  load: (ref: string) => ValidateFunction | undefined;
}

/** The generated modules, written where they can require ajv's runtime from node_modules. */
function loadGenerated(): Precompiled {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-schema-codegen-'));
  symlinkSync(packagePath('node_modules'), path.join(dir, 'node_modules'), 'dir');
  const out = path.join(dir, 'validators');
  mkdirSync(out);
  for (const [name, code] of validatorModules()) writeFileSync(path.join(out, name), code);
  return createRequire(path.join(out, 'index.cjs'))('./index.cjs') as Precompiled;
}

const json = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

/** Documents of every kind the schemas describe, valid and not. */
function samples(): unknown[] {
  const vectors = (
    json(path.join(FIXTURES, 'in-toto', 'VALIDATION_VECTORS.extracted.json')) as {
      vectors: Array<{ json: unknown }>;
    }
  ).vectors.map((v) => v.json);
  const inputs = readdirSync(packagePath('examples', 'policy-inputs'))
    .filter((f) => f.endsWith('.json') && f !== 'expected.json')
    .map((f) => json(packagePath('examples', 'policy-inputs', f)));
  const config = parseYAML(readFileSync(packagePath('examples', 'gate.yaml'), 'utf8')) as unknown;
  const docs = [
    ...vectors,
    ...vectors.map((v) => (v as { predicate?: unknown }).predicate),
    ...inputs,
    config,
    json(packagePath('policies', 'data.json')),
    {},
    [],
    null,
    'a string',
  ];
  return [...docs, ...docs.flatMap(worse)].filter((d) => d !== undefined);
}

/** Each top-level member left out, and each made a number. */
function worse(doc: unknown): unknown[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [];
  return Object.keys(doc).flatMap((k) => {
    const { [k]: _, ...without } = doc as Record<string, unknown>;
    return [without, { ...doc, [k]: 42 }];
  });
}

describe('the validators compiled when the package is built', () => {
  const built = loadGenerated();
  const ajv = createSchemaRegistry();
  const refs = SCHEMA_FILES.flatMap((f) => {
    const id = (ajv.getSchema(f)!.schema as { $id?: string }).$id;
    return id ? [f, id] : [f];
  }).concat(PRECOMPILED_FRAGMENTS);

  it('are made of these schemas, and exist for every file, $id and fragment the gate asks for', () => {
    expect(built.digest).toBe(schemasDigest());
    for (const ref of refs) expect(typeof built.load(ref), ref).toBe('function');
    expect(built.load('urn:gate:schema:decision')).toBe(built.load('decision.schema.json'));
    expect(built.load('nothing.schema.json')).toBeUndefined();
  });

  it("answer every sample as Ajv's registry does, errors and filled-in defaults included", () => {
    const docs = samples();
    expect(docs.length).toBeGreaterThan(200);
    let valid = 0;
    for (const ref of refs) {
      const fromAjv = ajv.getSchema(ref)!;
      const fromBuild = built.load(ref)!;
      for (const doc of docs) {
        const [a, b] = [structuredClone(doc), structuredClone(doc)];
        const want = { valid: fromAjv(a), errors: fromAjv.errors ?? null, doc: a };
        const got = { valid: fromBuild(b), errors: fromBuild.errors ?? null, doc: b };
        if (!isDeepStrictEqual(got, want)) {
          expect(got, `${ref} on ${JSON.stringify(doc).slice(0, 120)}`).toEqual(want);
        }
        if (want.valid) valid++;
      }
    }
    expect(valid).toBeGreaterThan(20); // the samples are not all refused
  });

  it('are current in dist/ (make build writes them after tsc)', () => {
    const index = packagePath('dist', 'util', PRECOMPILED_MODULE);
    if (!existsSync(index)) throw new Error(`${index} is missing: run \`make build\``);
    const inDist = createRequire(index)(index) as Precompiled;
    expect(inDist.digest, 'dist/util/schema-validators/ is stale: run `make build`').toBe(
      schemasDigest(),
    );
  });
});
