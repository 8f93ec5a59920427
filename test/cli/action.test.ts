import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packagePath } from '../../src/util/paths.js';
import { FIXTURES } from '../helpers.js';

/**
 * The GitHub Action's check step, run as the runner runs it: bash, inputs in the environment,
 * GITHUB_STEP_SUMMARY and GITHUB_OUTPUT files, the built gate.
 */
const action = parse(readFileSync(packagePath('action.yml'), 'utf8')) as {
  runs: { steps: Array<{ id?: string; run?: string; env?: Record<string, string> }> };
};
const step = action.runs.steps.find((s) => s.id === 'check')!;

async function runStep(inputs: Record<string, string>, policy: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-action-'));
  const config = path.join(dir, 'gate.yaml');
  writeFileSync(
    config,
    `policy:\n  path: ${path.join(FIXTURES, 'policies', policy)}\nledger:\n  path: ${path.join(dir, 'ledger.jsonl')}\n`,
  );
  const files = {
    GITHUB_STEP_SUMMARY: path.join(dir, 'summary.md'),
    GITHUB_OUTPUT: path.join(dir, 'output'),
    RUNNER_TEMP: dir,
  };
  for (const f of [files.GITHUB_STEP_SUMMARY, files.GITHUB_OUTPUT]) writeFileSync(f, '');
  const env = {
    ...process.env,
    ...files,
    SUBJECTS: '',
    ENVIRONMENT: '',
    CONFIG: config,
    BUNDLE_DIR: '',
    REKOR_URL: '',
    STORE_URL: '',
    BREAK_GLASS: '',
    CONTEXT: '',
    DRY_RUN: 'false',
    GATE: packagePath('dist', 'cli', 'main.js'),
    ...inputs,
  };
  let code = 0;
  try {
    await promisify(execFile)('bash', ['-e', '-c', step.run!], { env });
  } catch (err) {
    code = (err as { code: number }).code;
  }
  return {
    code,
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    output: readFileSync(files.GITHUB_OUTPUT, 'utf8'),
  };
}

describe('the GitHub Action', () => {
  it('reads every input from the environment, not from the script text', () => {
    expect(step.run).not.toMatch(/\$\{\{/);
    expect(Object.keys(step.env!)).toEqual(
      expect.arrayContaining(['SUBJECTS', 'ENVIRONMENT', 'CONFIG', 'BREAK_GLASS']),
    );
  });

  it('passes on an allow and writes the summary and outputs', async () => {
    const r = await runStep({ SUBJECTS: `sha256:${'a'.repeat(64)}`, ENVIRONMENT: 'dev' }, 'ok');
    expect(r.code).toBe(0);
    expect(r.summary).toContain('## gate: ✅ Allowed for `dev`');
    expect(r.output).toMatch(/^outcome=allow\ndecision-id=[0-9a-f-]{36}\n$/);
  });

  it('fails the job on a deny and explains it in the summary', async () => {
    const subjects = [`app=sha256:${'b'.repeat(64)}`, `db=sha256:${'c'.repeat(64)}`].join('\n');
    const r = await runStep(
      { SUBJECTS: subjects, ENVIRONMENT: 'production' },
      'requires-provenance',
    );
    expect(r.code).toBe(1);
    expect(r.summary).toContain('❌ Denied');
    expect(r.summary).toContain('| `test.provenance` | no provenance for sha256:bbbb');
    expect(r.summary).toContain('attach a slsa provenance attestation');
    expect(r.output).toContain('outcome=deny');
  });

  it('passes a would-deny in dry-run', async () => {
    const r = await runStep(
      { SUBJECTS: `sha256:${'d'.repeat(64)}`, ENVIRONMENT: 'production', DRY_RUN: 'true' },
      'requires-provenance',
    );
    expect(r.code).toBe(0);
    expect(r.summary).toContain('dry-run: not enforced');
  });

  it('exits 2 on a bad subject without writing outputs', async () => {
    const r = await runStep({ SUBJECTS: 'latest', ENVIRONMENT: 'dev' }, 'ok');
    expect(r.code).toBe(2);
    expect(r.output).toBe('');
  });
});
