import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PolicyError } from '../errors.js';
import { packagePath } from '../util/paths.js';

const run = promisify(execFile);

/** The entrypoint every gate policy exposes (docs/policies.md). */
export const ENTRYPOINT = 'gate/decision';

/** What a policy directory may hold that is not part of the decision (same as the Makefile's). */
export const IGNORE = ['--ignore', '*_test.rego', '--ignore', 'examples', '--ignore', '*.md'];

/** The real opa CLI: from PATH, else the pinned copy `make policies` installs into .tools/bin. */
export function findOpa(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OPA && isExecutable(env.OPA)) return env.OPA;
  const dirs = [...(env.PATH ?? '').split(path.delimiter), packagePath('.tools', 'bin')];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, 'opa');
    if (isExecutable(candidate)) return candidate;
  }
  throw new PolicyError(
    'OPA_UNAVAILABLE',
    'the opa cli is needed to build a rego policy: put opa on PATH or run `make policies`',
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles a Rego directory to an OPA WebAssembly bundle (.tar.gz bytes) with the real compiler.
 * Test files are left out: they are not part of the decision.
 */
export async function buildWasmBundle(regoDir: string, opa = findOpa()): Promise<Buffer> {
  const out = mkdtempSync(path.join(tmpdir(), 'gate-opa-build-'));
  const target = path.join(out, 'bundle.tar.gz');
  try {
    await run(opa, ['build', '-t', 'wasm', '-e', ENTRYPOINT, ...IGNORE, '-o', target, regoDir], {
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return readFileSync(target);
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
    throw new PolicyError('POLICY_BUILD_FAILED', `opa build failed: ${firstLines(stderr)}`, {
      cause: err,
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Evaluates with OPA's own Go evaluator (`opa eval`): the reference the WebAssembly path is
 * checked against in the differential test and the benchmark.
 */
export async function opaEval(
  regoDir: string,
  inputFile: string,
  dataFiles: string[] = [],
  opa = findOpa(),
): Promise<unknown> {
  const args = ['eval', '--format', 'json', ...IGNORE, '-d', regoDir];
  for (const f of dataFiles) args.push('-d', f);
  args.push('-i', inputFile, `data.${ENTRYPOINT.replace('/', '.')}`);
  const { stdout } = await run(opa, args, { maxBuffer: 64 * 1024 * 1024 });
  const parsed = JSON.parse(stdout) as {
    result?: Array<{ expressions: Array<{ value: unknown }> }>;
  };
  return parsed.result?.[0]?.expressions[0]?.value;
}

function firstLines(text: string): string {
  return text.split('\n').slice(0, 3).join(' / ').toLowerCase();
}
