import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { cli, FIXTURES } from '../helpers.js';

/** `gate evaluate`: the evaluate stage alone, on the built default policy or a chosen one. */
const examples = packagePath('examples', 'policy-inputs');
const tmp = mkdtempSync(path.join(tmpdir(), 'gate-evaluate-'));

describe('gate evaluate', () => {
  it('exits 0 on an input the default policy allows', async () => {
    const r = await cli(['evaluate', '--input', path.join(examples, 'allow-production.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALLOW\n/);
  });

  it('exits 1 on a deny and says what would pass', async () => {
    const r = await cli(['evaluate', '--input', path.join(examples, 'deny-missing-tests.json')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^DENY\n {2}violation tests\./);
    expect(r.stdout).toContain('to pass:');
  });

  it('prints the result with the policy digest as json', async () => {
    const r = await cli([
      'evaluate',
      '--input',
      path.join(examples, 'deny-unknown-environment.json'),
      '--format',
      'json',
    ]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.violations.map((v: { id: string }) => v.id)).toContain('environment.unknown');
    expect(out.policy).toMatch(/^[0-9a-f]{64}$/);
  });

  it('evaluates with a policy built from a rego directory by the real opa', async () => {
    const input = path.join(tmp, 'in.json');
    writeFileSync(
      input,
      JSON.stringify({
        subjects: [{ digest: { sha256: 'a'.repeat(64) } }],
        environment: 'dev',
        effectiveTime: '2026-01-01T00:00:00Z',
        attestations: [],
        rejected: [],
        context: {},
        breakGlass: [],
      }),
    );
    const r = await cli([
      'evaluate',
      '--input',
      input,
      '--policy',
      path.join(FIXTURES, 'policies', 'requires-provenance'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('violation test.provenance');
  });

  for (const [what, content, code] of [
    ['malformed json', '{', 'INPUT_MALFORMED_JSON'],
    ['an input that fails the schema', '{"environment": "dev"}', 'POLICY_INPUT_INVALID'],
  ] as const) {
    it(`exits 2 on ${what} with one coded line`, async () => {
      const input = path.join(tmp, `${code}.json`);
      writeFileSync(input, content);
      const r = await cli(['evaluate', '--input', input]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^gate: ${code}: [^\\n]+\\n$`));
    });
  }

  it('exits 2 when the policy cannot be loaded', async () => {
    const r = await cli([
      'evaluate',
      '--input',
      path.join(examples, 'allow-production.json'),
      '--policy',
      path.join(FIXTURES, 'policies', 'host-builtin'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gate: POLICY_LOAD_FAILED: .*http\.send/);
  });
});
