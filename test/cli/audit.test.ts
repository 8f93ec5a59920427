import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { cli, FIXTURES } from '../helpers.js';

/**
 * `gate audit` over a SQLite ledger the real gate wrote: query, show, verify (and its failure
 * after one edited record), replay with the recorded policy and with another, export.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'gate-audit-cli-'));
const config = path.join(dir, 'gate.yaml');
const ids: string[] = [];
const hex = (c: string) => c.repeat(64);

beforeAll(async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path.join(dir, 'ledger.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(
    config,
    [
      `policy: { path: ${path.join(FIXTURES, 'policies', 'requires-provenance')} }`,
      'ledger: { path: ledger.db, checkpointKey: ledger.key, checkpointEvery: { records: 2 } }',
      '',
    ].join('\n'),
  );
  const gate = await createGate(loadConfig(config, dir), { sources: () => [] });
  for (const [c, env] of [
    ['a', 'dev'],
    ['b', 'production'],
    ['c', 'qa'],
  ] as const) {
    ids.push(
      (
        await gate.check({
          subjects: [{ digest: { algorithm: 'sha256', hex: hex(c) } }],
          environment: env,
        })
      ).id,
    );
  }
  await gate.close();
});

const audit = (...args: string[]) => cli(['audit', ...args, '--config', config]);

describe('gate audit', () => {
  it('queries by subject and environment, newest first, as a table or json', async () => {
    const table = await audit('query');
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^SEQ\s+TIME\s+ENV\s+OUTCOME/);
    expect(table.stdout.split('\n')[1]).toMatch(/^3\s/);
    const json = await audit('query', '--subject', `sha256:${hex('b')}`, '--format', 'json');
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({
        id: ids[1],
        environment: 'production',
        outcome: 'deny',
        rules: ['test.provenance'],
      }),
    ]);
    const byRule = await audit('query', '--rule', 'test.environment', '--format', 'jsonl');
    expect(
      byRule.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual([ids[2]]);
  });

  it('shows one decision with the input it was made on', async () => {
    const r = await audit('show', ids[0]!);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown.decision.id).toBe(ids[0]);
    expect(shown.input).toMatchObject({
      environment: 'dev',
      subjects: [{ digest: { sha256: hex('a') } }],
    });
  });

  it('replays a decision with the recorded policy, and shows a difference with another', async () => {
    const same = await audit('replay', ids[1]!);
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/same result \(deny: test\.provenance\)/);
    const other = await audit('replay', ids[1]!, '--policy', path.join(FIXTURES, 'policies', 'ok'));
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(
      /DIFFERS[\s\S]*recorded: deny: test\.provenance[\s\S]*now: +allow/,
    );
  });

  it('exports every record and checkpoint as json lines', async () => {
    const out = path.join(dir, 'export.jsonl');
    expect((await audit('export', '--out', out)).code).toBe(0);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.seq).map((l) => l.id)).toEqual(ids);
    expect(lines.filter((l) => l.checkpoint).length).toBeGreaterThanOrEqual(1);
  });

  it('verifies the chain, then names the one record edited behind its back (exit 1)', async () => {
    const ok = await audit('verify');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      /^ledger verified: 3 records, \d+ checkpoints signed by the ledger key/,
    );
    const db = new Database(path.join(dir, 'ledger.db'));
    const triggers = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
      .all() as Array<{ name: string }>;
    for (const t of triggers) db.exec(`DROP TRIGGER "${t.name}"`); // as an attacker would
    db.prepare("UPDATE records SET outcome = 'allow' WHERE seq = 2").run();
    db.close();
    const bad = await audit('verify');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^LEDGER TAMPERED: record 2 \\(${ids[1]}\\)`));
  });

  it('answers a missing decision and a bad flag with one coded line, exit 2', async () => {
    expect(await audit('show', 'nope')).toMatchObject({
      code: 2,
      stderr: 'gate: USAGE_ERROR: no decision nope in the ledger\n',
    });
    const bad = await audit('query', '--from', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^gate: USAGE_ERROR: --from takes an rfc 3339 time/);
  });
});
