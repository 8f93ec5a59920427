import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { findOpa, IGNORE } from '../src/evaluate/opa-cli.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../src/evaluate/policy.js';
import { packagePath } from '../src/paths.js';

/**
 * The default policy on a typical input (allow-production.json: five attestations, ~20 KB),
 * evaluated through the gate's WebAssembly path and, in the same run, by the real opa's Go
 * evaluator (`opa bench`, which times evaluation only, without process start-up). Goal: 100 µs
 * or less per evaluation, and no slower than OPA's own evaluator.
 */
const POLICIES = packagePath('policies');
const INPUT_FILE = path.join(POLICIES, 'examples', 'allow-production.json');
const input = JSON.parse(readFileSync(INPUT_FILE, 'utf8')) as unknown;
const inputBytes = Buffer.byteLength(JSON.stringify(input));
let policy: CompiledPolicy;
let opaNsPerOp = NaN;

beforeAll(async () => {
  policy = await loadCompiledPolicy(packagePath('dist', 'policy', 'bundle.tar.gz'));
  const out = execFileSync(
    findOpa(),
    [
      'bench',
      '--format',
      'json',
      ...IGNORE,
      '-d',
      POLICIES,
      '-i',
      INPUT_FILE,
      'data.gate.decision',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  ).toString('utf8');
  const { N, T } = JSON.parse(out) as { N: number; T: number };
  opaNsPerOp = T / N;
});

afterAll(() => {
  const n = 2000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) policy.evaluate(input);
  const wasmNs = Number(process.hrtime.bigint() - start) / n;
  console.log(
    [
      '',
      `policy evaluation, ${(inputBytes / 1024).toFixed(1)} KB input:`,
      `  wasm (gate)        ${(wasmNs / 1000).toFixed(1)} µs/op`,
      `  opa bench (Go)     ${(opaNsPerOp / 1000).toFixed(1)} µs/op`,
      `  ratio wasm / opa   ${(wasmNs / opaNsPerOp).toFixed(2)} (below 1 means the gate is faster)`,
      `  goal 100 µs/op     ${wasmNs <= 100_000 ? 'met' : 'not met'}`,
    ].join('\n'),
  );
});

describe('default policy decision', () => {
  bench('wasm evaluate (input as object)', () => {
    policy.evaluate(input);
  });
});
