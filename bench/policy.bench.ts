import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { findOpa, IGNORE } from '../src/evaluate/opa-cli.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../src/evaluate/policy.js';
import { packagePath } from '../src/util/paths.js';

/**
 * The default policy on a typical input (allow-production.json: six attestations, ~23 KB),
 * evaluated through the gate's WebAssembly path and, in the same run, by the real opa's Go
 * evaluator (`opa bench`, which times evaluation only, without process start-up). Goal: 100 µs
 * or less per evaluation, and no slower than OPA's own evaluator.
 *
 * The floor is a policy that only returns a constant decision, evaluated on the same input the
 * same way: what every evaluation pays before any rule runs (opa-wasm JSON.stringify's the
 * input and the module parses it; the decision is read back and checked against its schema).
 */
const POLICIES = packagePath('policies');
const INPUT_FILE = packagePath('examples', 'policy-inputs', 'allow-production.json');
const input = JSON.parse(readFileSync(INPUT_FILE, 'utf8')) as unknown;
const inputBytes = Buffer.byteLength(JSON.stringify(input));
let policy: CompiledPolicy;
let floor: CompiledPolicy;
let opaNsPerOp = NaN;

beforeAll(async () => {
  policy = await loadCompiledPolicy(packagePath('dist', 'policy', 'bundle.tar.gz'));
  const trivial = mkdtempSync(path.join(tmpdir(), 'gate-bench-floor-'));
  writeFileSync(
    path.join(trivial, 'floor.rego'),
    'package gate\n\ndecision := {"allow": true, "violations": [], "warnings": [], "rules": []}\n',
  );
  floor = await loadCompiledPolicy(trivial);
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
}, 180_000);

/** ns per evaluation: the median and the best of 20 batches (robust on a busy machine). */
function time(p: CompiledPolicy): { median: number; best: number } {
  for (let i = 0; i < 500; i++) p.evaluate(input); // warm-up (and WebAssembly tier-up)
  const batches: number[] = [];
  for (let b = 0; b < 20; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) p.evaluate(input);
    batches.push(Number(process.hrtime.bigint() - start) / 100);
  }
  batches.sort((x, y) => x - y);
  return { median: batches[10]!, best: batches[0]! };
}

afterAll(() => {
  const wasm = time(policy);
  const base = time(floor);
  const us = (ns: number) => `${(ns / 1000).toFixed(1)} µs/op`;
  console.log(
    [
      '',
      `policy evaluation, ${(inputBytes / 1024).toFixed(1)} KB input:`,
      `  wasm (gate)        ${us(wasm.median)} (best batch ${us(wasm.best)})`,
      `  opa bench (Go)     ${us(opaNsPerOp)}`,
      `  ratio wasm / opa   ${(wasm.median / opaNsPerOp).toFixed(2)} (below 1 means the gate is faster)`,
      `  floor              ${us(base.median)} (best batch ${us(base.best)}): a constant policy on the same input`,
      `  policy work        ${us(wasm.median - base.median)} (wasm minus floor)`,
      `  goal 100 µs/op     ${wasm.median <= 100_000 ? 'met' : 'not met'}`,
    ].join('\n'),
  );
});

describe('default policy decision', () => {
  bench('wasm evaluate (input as object)', () => {
    policy.evaluate(input);
  });
});
