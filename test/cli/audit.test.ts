import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
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
      'ledger: { path: ledger.db, checkpointKey: ledger.key, checkpointEvery: { records: 2 }, checkpointLog: checkpoints.jsonl }',
      '',
    ].join('\n'),
  );
  const gate = await createGate(loadConfig(config, { cwd: dir }), { sources: () => [] });
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

  it('verifies a copy on read-only media (a read-only tmpfs), and refuses a copy it cannot read whole', async () => {
    // Tests run as root, for whom chmod changes nothing: a tmpfs remounted read-only is real.
    expect(process.getuid?.(), 'mounting a tmpfs needs root, as make test has').toBe(0);
    const media = mkdtempSync(path.join(tmpdir(), 'gate-ro-media-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', media]);
    try {
      copyFileSync(path.join(dir, 'ledger.db'), path.join(media, 'ledger.db'));
      const key = generateKeyPairSync('ed25519').publicKey;
      writeFileSync(path.join(media, 'ledger.pub'), key.export({ format: 'pem', type: 'spki' }));
      writeFileSync(path.join(media, 'gate.yaml'), 'ledger: { path: ledger.db }\n');
      execFileSync('mount', ['-o', 'remount,ro', media]);
      const at = (...args: string[]) =>
        cli(['audit', ...args, '--config', path.join(media, 'gate.yaml')]);
      const ok = await at('verify');
      expect(ok).toMatchObject({ code: 0, stderr: '' });
      expect(ok.stdout).toMatch(/^ledger verified: 3 records, \d+ checkpoints/);
      expect((await at('query', '--format', 'json')).code).toBe(0);
      // the checkpoints were signed by another key than this one: caught, still read-only
      const other = await at('verify', '--public-key', path.join(media, 'ledger.pub'));
      expect(other.code).toBe(1);
      expect(other.stdout).toMatch(/signature does not verify \[LEDGER_CHECKPOINT_INVALID\]/);
      // a copy taken with a write-ahead log beside it cannot be read whole there: said so
      execFileSync('mount', ['-o', 'remount,rw', media]);
      writeFileSync(path.join(media, 'ledger.db-wal'), 'not yet checkpointed');
      execFileSync('mount', ['-o', 'remount,ro', media]);
      const torn = await at('verify');
      expect(torn.code).toBe(2);
      expect(torn.stderr).toMatch(
        /^gate: LEDGER_UNAVAILABLE: cannot open the ledger .* read-only: its write-ahead log/,
      );
    } finally {
      execFileSync('umount', [media]);
    }
  });

  it('checks the checkpoints published outside the ledger, and the size an auditor expects', async () => {
    const log = path.join(dir, 'checkpoints.jsonl');
    const held = await audit('verify', '--checkpoint', log, '--expect-size', '3');
    expect(held.code).toBe(0);
    expect(held.stdout).toMatch(/extends the 1 checkpoint held outside it \(up to size 2\)/);
    const longer = await audit('verify', '--expect-size', '4');
    expect(longer.code).toBe(1);
    expect(longer.stdout).toMatch(
      /expected at least 4 records, the ledger has 3 .*\[LEDGER_TRUNCATED\]/,
    );
    writeFileSync(path.join(dir, 'junk.json'), '{"size": "two"}');
    const junk = await audit('verify', '--checkpoint', path.join(dir, 'junk.json'));
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/^gate: INPUT_MALFORMED_JSON: .*is not a signed checkpoint/);
    expect((await audit('verify', '--expect-size', 'many')).stderr).toMatch(/USAGE_ERROR/);
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

  it('replays as json, with the digests of both policies', async () => {
    const r = await audit(
      'replay',
      ids[1]!,
      '--policy',
      path.join(FIXTURES, 'policies', 'ok'),
      '--format',
      'json',
    );
    expect(r.code).toBe(1);
    const replay = JSON.parse(r.stdout);
    expect(replay).toMatchObject({
      id: ids[1],
      then: { same: true },
      now: { allow: true, same: false },
    });
    expect(replay.then.policy).toMatch(/^[0-9a-f]{64}$/);
    expect(replay.now.policy).not.toBe(replay.then.policy);
  });

  it('verifies a json lines ledger as far as it can, and says it has no hash chain', async () => {
    const jsonl = path.join(dir, 'jsonl');
    mkdirSync(jsonl);
    writeFileSync(
      path.join(jsonl, 'gate.yaml'),
      'ledger: { backend: jsonl, path: ledger.jsonl }\n',
    );
    const decision = { id: 'j1', outcome: 'allow', subjects: [] };
    writeFileSync(path.join(jsonl, 'ledger.jsonl'), `${JSON.stringify({ decision, input: {} })}\n`);
    const ok = await cli(['audit', 'verify', '--config', path.join(jsonl, 'gate.yaml')]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(/^ledger read: 1 records, .*no hash chain/);
    appendFileSync(
      path.join(jsonl, 'ledger.jsonl'),
      `${JSON.stringify({ decision, input: {} })}\n`,
    );
    const twice = await cli(['audit', 'verify', '--config', path.join(jsonl, 'gate.yaml')]);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toMatch(
      /^LEDGER TAMPERED: record 2 \(j1\): decision j1 is recorded twice/,
    );
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
