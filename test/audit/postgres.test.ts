import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createPostgresLedger, type PostgresLedgerOptions } from '../../src/audit/postgres.js';
import { APPEND_LOCK, LOCK_CLASS } from '../../src/audit/postgres-schema.js';
import {
  GENESIS,
  canonical,
  recordHash,
  recordedInput,
  signCheckpoint,
  verifyChain,
  type LedgerRecord,
} from '../../src/audit/record.js';
import { normalise } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { FIXTURES } from '../helpers.js';
import { startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { decisionFor, digestOf, inputFor } from './postgres-helpers.js';

/**
 * The PostgreSQL ledger against a real server: a throwaway cluster started for this file
 * (test/support/postgres-server.ts), one fresh database per test.
 */
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const REPO = path.resolve(import.meta.dirname, '../..');

let server: PostgresServer;
const opened: AuditLedger[] = [];

beforeAll(async () => {
  server = await startPostgresServer();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close().catch(() => undefined)));
});
afterAll(async () => {
  await server?.close();
});

async function ledgerAt(url: string, opts: Partial<PostgresLedgerOptions> = {}) {
  const ledger = await createPostgresLedger({ url, ...opts });
  opened.push(ledger);
  return ledger;
}

async function freshLedger(opts: Partial<PostgresLedgerOptions> = {}) {
  const url = await server.createDatabase();
  return { url, ledger: await ledgerAt(url, opts) };
}

/** Raw SQL, as an operator (or an attacker with the database password) would run it. */
async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function appendMany(ledger: AuditLedger, n: number, prefix = 'd') {
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}-${i}`;
    await ledger.append(
      decisionFor(id, i % 2 ? {} : { outcome: 'deny', violations: ['provenance.required'] }),
      inputFor(id),
    );
  }
}

const verify = async (ledger: AuditLedger) =>
  verifyChain(ledger.records(), await ledger.checkpoints(), publicKey);

async function collect(records: AsyncIterable<LedgerRecord>): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

describe('the PostgreSQL ledger', () => {
  it('creates its schema once, even when replicas start at the same time', async () => {
    const url = await server.createDatabase();
    await Promise.all([ledgerAt(url), ledgerAt(url), ledgerAt(url), ledgerAt(url)]);
    await ledgerAt(url); // and again on an existing schema
    expect(await sql(url, 'SELECT version FROM ledger_migrations')).toEqual([
      { version: 1 },
      { version: 2 },
    ]);
    const tables = await sql<{ tablename: string }>(
      url,
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
    );
    expect(tables.map((t) => t.tablename)).toEqual([
      'checkpoints',
      'consumed_requests',
      'ledger_migrations',
      'record_rules',
      'record_subjects',
      'records',
    ]);
  });

  it('says LEDGER_UNAVAILABLE when it cannot reach the server, CONFIG_INVALID for a bad key', async () => {
    const closed = `postgres://postgres@127.0.0.1:${server.port}/no_such_database`;
    const err = await createPostgresLedger({ url: closed }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    expect((err as Error).message).toBe(
      'cannot prepare the ledger schema in postgresql: database "no_such_database" does not exist',
    );
    const url = await server.createDatabase();
    await expect(
      createPostgresLedger({ url, checkpoint: { key: publicKey } }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('appends decisions and answers get, head, query and consumed', async () => {
    const { ledger } = await freshLedger();
    expect(await ledger.head()).toEqual({ size: 0, hash: GENESIS });
    const t = (minute: number) => new Date(Date.UTC(2025, 5, 1, 12, minute));
    const decisions = [
      decisionFor('a1', { time: t(0) }),
      decisionFor('d1', { time: t(1), outcome: 'deny', violations: ['provenance.required'] }),
      decisionFor('o1', {
        time: t(2),
        outcome: 'override',
        violations: ['provenance.required', 'review.two_person'],
        override: { requester: 'oncall@acme.example', requestId: 'req-1' },
      }),
      decisionFor('s1', { time: t(3), environment: 'staging', subjects: ['app', 'worker'] }),
      decisionFor('e1', { time: t(4), outcome: 'error' }),
    ];
    for (const d of decisions) await ledger.append(d, inputFor(d.id));

    const head = await ledger.head();
    expect(head.size).toBe(5);
    const last = await ledger.get('e1');
    expect(head.hash).toBe(last!.hash);
    expect(await ledger.get('missing')).toBeUndefined();

    const o1 = await ledger.get('o1');
    expect(o1).toMatchObject({
      seq: 3,
      id: 'o1',
      outcome: 'override',
      requester: 'oncall@acme.example',
      rules: ['provenance.required', 'review.two_person'],
      subjects: [`sha256:${digestOf('app')}`],
      time: t(2).toISOString(),
    });
    expect(o1!.decision).toEqual(decisions[2]);
    expect(recordedInput(o1!)).toEqual(inputFor('o1'));
    expect(o1!.prevHash).toBe((await ledger.get('d1'))!.hash);
    expect(recordHash(o1!)).toBe(o1!.hash);

    const ids = async (q: Parameters<AuditLedger['query']>[0]) =>
      (await ledger.query(q)).map((r) => r.id);
    expect(await ids({})).toEqual(['e1', 's1', 'o1', 'd1', 'a1']); // newest first
    expect(await ids({ limit: 2 })).toEqual(['e1', 's1']);
    expect(await ids({ subject: `sha256:${digestOf('worker')}` })).toEqual(['s1']);
    expect(await ids({ subject: `sha256:${digestOf('app')}`, environment: 'production' })).toEqual([
      'e1',
      'o1',
      'd1',
      'a1',
    ]);
    expect(await ids({ environment: 'staging' })).toEqual(['s1']);
    expect(await ids({ outcome: 'deny' })).toEqual(['d1']);
    expect(await ids({ requester: 'oncall@acme.example' })).toEqual(['o1']);
    expect(await ids({ rule: 'provenance.required' })).toEqual(['o1', 'd1']);
    expect(await ids({ rule: 'review.two_person' })).toEqual(['o1']);
    expect(await ids({ from: t(1).toISOString(), to: t(3).toISOString() })).toEqual(['o1', 'd1']);
    expect(await ids({ from: '2025-06-01T14:02:30+02:00' })).toEqual(['e1', 's1']);
    await expect(ledger.query({ from: 'yesterday' })).rejects.toMatchObject({
      code: 'USAGE_ERROR',
    });
    await expect(ledger.query({ limit: 0 })).rejects.toMatchObject({ code: 'USAGE_ERROR' });

    expect(await ledger.consumed('req-1')).toBe(true);
    expect(await ledger.consumed('req-2')).toBe(false);
    const all = await collect(ledger.records());
    expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(await verify(ledger)).toEqual({ ok: true, records: 5, checkpoints: 0 });
  });

  it('stores the canonical record text, byte for byte', async () => {
    const { url, ledger } = await freshLedger();
    await ledger.append(decisionFor('x', { subjects: ['ünïcode ✓'] }), { z: 1, a: [3, 1.5] });
    const [row] = await sql<{ body: string }>(url, 'SELECT body FROM records');
    const record = (await ledger.get('x'))!;
    expect(row!.body).toBe(canonical(record));
  });

  it('signs checkpoints every N records, and the chain verifies with them', async () => {
    const { ledger } = await freshLedger({ checkpoint: { key: privateKey, everyRecords: 3 } });
    await appendMany(ledger, 10);
    const checkpoints = await ledger.checkpoints();
    expect(checkpoints.map((c) => c.size)).toEqual([3, 6, 9]);
    const records = await collect(ledger.records());
    expect(checkpoints[1]!.headHash).toBe(records[5]!.hash);
    expect(await verify(ledger)).toEqual({ ok: true, records: 10, checkpoints: 3 });
  });

  it('signs a checkpoint once the last one (or the opening) is everySeconds old, idle or not', async () => {
    let clock = Date.UTC(2025, 0, 1);
    const now = () => new Date(clock);
    const { ledger } = await freshLedger({
      now,
      checkpoint: { key: privateKey, everySeconds: 2 },
    });
    await ledger.append(decisionFor('t1', { time: now() }), {});
    clock += 1000;
    await ledger.append(decisionFor('t2', { time: now() }), {});
    expect(await ledger.checkpoints()).toEqual([]);
    clock += 1500;
    await ledger.append(decisionFor('t3', { time: now() }), {});
    expect((await ledger.checkpoints()).map((c) => [c.size, c.time])).toEqual([
      [3, now().toISOString()],
    ]);
    // idle: the ledger looks by itself
    await ledger.append(decisionFor('t4', { time: now() }), {});
    clock += 5000;
    await expect
      .poll(async () => (await ledger.checkpoints()).map((c) => c.size), { timeout: 5000 })
      .toEqual([3, 4]);
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 4, checkpoints: 2 });
  });

  it('refuses updates, deletes, truncation and records that do not extend the head', async () => {
    const { url, ledger } = await freshLedger({ checkpoint: { key: privateKey, everyRecords: 1 } });
    await appendMany(ledger, 1);
    const override = { requester: 'oncall@acme.example', requestId: 'req-1' };
    const violations = ['provenance.required'];
    await ledger.append(decisionFor('o', { outcome: 'override', override, violations }), {});
    const refused = /append-only/;
    await expect(sql(url, `UPDATE records SET outcome = 'allow' WHERE seq = 2`)).rejects.toThrow(
      refused,
    );
    await expect(sql(url, 'DELETE FROM records WHERE seq = 2')).rejects.toThrow(refused);
    await expect(
      sql(url, 'SET session_replication_role = replica; DELETE FROM records WHERE seq = 2'),
    ).rejects.toThrow(refused);
    await expect(sql(url, 'TRUNCATE records CASCADE')).rejects.toThrow(refused);
    await expect(sql(url, `UPDATE record_subjects SET subject = 'x'`)).rejects.toThrow(refused);
    await expect(sql(url, `DELETE FROM record_rules`)).rejects.toThrow(refused);
    await expect(sql(url, `UPDATE checkpoints SET size = 9`)).rejects.toThrow(refused);
    await expect(sql(url, `DELETE FROM consumed_requests`)).rejects.toThrow(refused);
    const forged = `INSERT INTO records (seq, id, time, environment, outcome, prev_hash, hash, body)
      VALUES ($1, 'forged', now(), 'production', 'allow', $2, $3, '{}')`;
    await expect(sql(url, forged, [5, (await ledger.head()).hash, 'f'.repeat(64)])).rejects.toThrow(
      /does not extend the chain/,
    );
    await expect(sql(url, forged, [3, GENESIS, 'f'.repeat(64)])).rejects.toThrow(
      /does not extend the chain/,
    );
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 2, checkpoints: 2 });
  });

  it('lets a break-glass request override once, across replicas', async () => {
    const { url, ledger: a } = await freshLedger();
    const b = await ledgerAt(url);
    const override = (id: string) =>
      decisionFor(id, {
        outcome: 'override',
        violations: ['provenance.required'],
        override: { requester: 'oncall@acme.example', requestId: 'req-7' },
      });
    expect(await b.consumed('req-7')).toBe(false);
    await a.append(override('o1'), {});
    expect(await b.consumed('req-7')).toBe(true);
    const err = await b.append(override('o2'), {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BREAK_GLASS_REPLAYED' });
    expect((err as Error).message).toMatch(/break-glass request req-7 was already used/);
    expect((await b.head()).size).toBe(1);
    // a refused override (outcome error) does not use the request up
    await a.append({ ...override('o3'), outcome: 'error', allow: false }, {});
    expect(await verify(b)).toMatchObject({ ok: true, records: 2 });
  });

  it('never keeps half a record', async () => {
    const { url, ledger } = await freshLedger();
    await ledger.append(decisionFor('same', { subjects: ['a', 'b'] }), {});
    const before = await ledger.head();
    const err = await ledger
      .append(decisionFor('same', { subjects: ['c'], violations: ['x'] }), {})
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    expect((err as Error).message).toBe(
      'cannot record the decision in postgresql: decision same is already recorded',
    );
    expect(await ledger.head()).toEqual(before);
    const [counts] = await sql(
      url,
      `SELECT (SELECT count(*) FROM record_subjects)::int AS subjects,
              (SELECT count(*) FROM record_rules)::int AS rules`,
    );
    expect(counts).toEqual({ subjects: 2, rules: 0 });
    await ledger.append(decisionFor('next'), {});
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 2 });
  });
});

describe('tampering with the ledger in the database', () => {
  /** A ledger of 5 records with a checkpoint at 5, and an attacker who dropped the triggers. */
  async function tampered(edit: string, values: unknown[] = []) {
    const { url, ledger } = await freshLedger({ checkpoint: { key: privateKey, everyRecords: 5 } });
    for (let i = 1; i <= 5; i++) {
      await ledger.append(
        decisionFor(`r${i}`, {
          outcome: i === 3 ? 'override' : 'deny',
          violations: ['provenance.required'],
          subjects: ['app', `lib${i}`],
          ...(i === 3 ? { override: { requester: 'oncall@acme.example', requestId: 'q' } } : {}),
        }),
        inputFor(`r${i}`),
      );
    }
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 5, checkpoints: 1 });
    await sql(
      url,
      `DROP TRIGGER records_append_only ON records;
       DROP TRIGGER record_subjects_append_only ON record_subjects;
       DROP TRIGGER record_rules_append_only ON record_rules;
       DROP TRIGGER consumed_requests_append_only ON consumed_requests;
       DROP TRIGGER checkpoints_append_only ON checkpoints;`,
    );
    await sql(url, `SET session_replication_role = replica; ${edit}`, values);
    return { url, ledger };
  }

  it.each([
    ['id', `UPDATE records SET id = 'r9' WHERE seq = 3`],
    ['time', `UPDATE records SET time = time - interval '1 day' WHERE seq = 3`],
    [
      'time by a microsecond',
      `UPDATE records SET time = time + interval '1 microsecond' WHERE seq = 3`,
    ],
    ['environment', `UPDATE records SET environment = 'dev' WHERE seq = 3`],
    ['outcome', `UPDATE records SET outcome = 'allow' WHERE seq = 3`],
    ['requester', `UPDATE records SET requester = 'mallory@evil.example' WHERE seq = 3`],
    ['requester (removed)', `UPDATE records SET requester = NULL WHERE seq = 3`],
    ['prev_hash', `UPDATE records SET prev_hash = repeat('1', 64) WHERE seq = 3`],
    ['hash', `UPDATE records SET hash = repeat('2', 64) WHERE seq = 3`],
    [
      'body (the decision)',
      `UPDATE records SET body = replace(body, '"allow":true', '"allow":false') WHERE seq = 3`,
    ],
    ['body (not json)', `UPDATE records SET body = 'garbage' WHERE seq = 3`],
    ['a subject', `UPDATE record_subjects SET subject = 'sha256:00' WHERE seq = 3 AND ord = 2`],
    ['a rule', `UPDATE record_rules SET rule = 'something.else' WHERE seq = 3`],
    ['a removed subject', `DELETE FROM record_subjects WHERE seq = 3 AND ord = 1`],
  ])('an edited %s breaks the chain at that record', async (_field, edit) => {
    const { ledger } = await tampered(edit);
    const result = await verify(ledger);
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.seq).toBe(3);
    expect(result.records).toBe(2);
  });

  it('a deleted consumed_requests row does not let the request override again; verify names it', async () => {
    const { ledger } = await tampered(`DELETE FROM consumed_requests`);
    expect(await ledger.consumed('q')).toBe(true);
    const again = decisionFor('again', {
      outcome: 'override',
      violations: ['provenance.required'],
      override: { requester: 'oncall@acme.example', requestId: 'q' },
    });
    await expect(ledger.append(again, {})).rejects.toMatchObject({
      code: 'BREAK_GLASS_REPLAYED',
      message: expect.stringMatching(/request q was already used by record 3/),
    });
    expect((await ledger.verify(publicKey)).firstBroken).toMatchObject({
      seq: 3,
      id: 'r3',
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'consumed_requests',
    });
  });

  it('deleted record_subjects rows hide a decision from queries; verify names the table', async () => {
    const { ledger } = await tampered(
      `DELETE FROM record_subjects WHERE subject = 'sha256:${digestOf('lib2')}'`,
    );
    expect(await ledger.query({ subject: `sha256:${digestOf('lib2')}` })).toEqual([]);
    expect((await ledger.verify(publicKey)).firstBroken).toMatchObject({
      seq: 2,
      id: 'r2',
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'record_subjects',
    });
  });

  it.each([
    ['record_subjects', `INSERT INTO record_subjects VALUES (99, 1, 'sha256:00')`, 99],
    ['record_rules', `INSERT INTO record_rules VALUES (98, 1, 'x')`, 98],
    ['consumed_requests', `INSERT INTO consumed_requests VALUES ('z', 4)`, 4],
  ])('a row added to %s that no record says is named', async (table, edit, seq) => {
    const { ledger } = await tampered(edit);
    expect((await ledger.verify(publicKey)).firstBroken).toMatchObject({
      seq,
      code: 'LEDGER_INDEX_MISMATCH',
      table,
    });
  });

  it('the tail cut with its checkpoint: the cadence, and a checkpoint held outside, catch it', async () => {
    const { url, ledger } = await tampered('SELECT 1');
    for (let i = 6; i <= 12; i++) await ledger.append(decisionFor(`r${i}`), {});
    const held = await ledger.checkpoints();
    expect(held.map((c) => c.size)).toEqual([5, 10]);
    const opts = { everyRecords: 5, external: held };
    expect(await ledger.verify(publicKey, opts)).toMatchObject({ ok: true, records: 12 });
    const attack = (edit: string) => sql(url, `SET session_replication_role = replica; ${edit}`);
    await attack('DELETE FROM checkpoints WHERE size = 10');
    expect((await ledger.verify(publicKey, { everyRecords: 5 })).firstBroken).toMatchObject({
      seq: 10,
      code: 'LEDGER_CHECKPOINT_MISSING',
    });
    await attack(
      ['record_subjects', 'record_rules', 'consumed_requests', 'records']
        .map((t) => `DELETE FROM ${t} WHERE seq > 5`)
        .join('; '),
    );
    // cut back to a checkpoint, the ledger alone looks whole: the checkpoint held outside tells
    expect(await ledger.verify(publicKey, { everyRecords: 5 })).toMatchObject({ ok: true });
    expect((await ledger.verify(publicKey, opts)).firstBroken).toMatchObject({
      seq: 10,
      code: 'LEDGER_TRUNCATED',
    });
  });

  it('two replicas overriding with one request at once: one override, the other BREAK_GLASS_REPLAYED', async () => {
    const { url, ledger: a } = await freshLedger();
    const b = await ledgerAt(url);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).append(
          decisionFor(`o${i}`, {
            outcome: 'override',
            violations: ['provenance.required'],
            override: { requester: 'oncall@acme.example', requestId: `race-${i >> 1}` },
          }),
          {},
        ),
      ),
    );
    for (let r = 0; r < 5; r++) {
      const pair = [results[2 * r]!, results[2 * r + 1]!];
      expect(pair.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
      expect(pair.find((p) => p.status === 'rejected')).toMatchObject({
        reason: { code: 'BREAK_GLASS_REPLAYED' },
      });
    }
    expect(await a.verify(publicKey)).toEqual({ ok: true, records: 5, checkpoints: 0 });
  });

  it('an edited seq breaks the chain', async () => {
    const { ledger } = await tampered(`UPDATE records SET seq = 50 WHERE seq = 5`);
    expect(await verify(ledger)).toMatchObject({
      ok: false,
      firstBroken: { seq: 50, id: 'r5', reason: 'expected record 5, found 50' },
    });
  });

  it('a deleted record breaks the chain at the record after it', async () => {
    const { ledger } = await tampered(
      `DELETE FROM record_subjects WHERE seq = 3; DELETE FROM record_rules WHERE seq = 3;
       DELETE FROM consumed_requests WHERE seq = 3; DELETE FROM records WHERE seq = 3`,
    );
    expect(await verify(ledger)).toMatchObject({
      ok: false,
      firstBroken: { seq: 4, id: 'r4', reason: 'expected record 3, found 4' },
    });
  });

  it('a deleted last record is caught by the checkpoint', async () => {
    const { ledger } = await tampered(
      `DELETE FROM record_subjects WHERE seq = 5; DELETE FROM record_rules WHERE seq = 5;
       DELETE FROM records WHERE seq = 5`,
    );
    const result = await verify(ledger);
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.reason).toMatch(/names 5 records, the ledger has 4/);
  });

  it('a rewritten history with recomputed hashes is caught by the checkpoint', async () => {
    const { url, ledger } = await tampered('SELECT 1');
    const records = await collect(ledger.records());
    let prev = records[1]!.hash;
    for (const r of records.slice(2)) {
      const { hash: _old, ...rest } = r;
      const body = { ...rest, prevHash: prev, decision: { ...r.decision, environment: 'dev' } };
      const hash = recordHash(body);
      await sql(url, 'UPDATE records SET prev_hash = $2, hash = $3, body = $4 WHERE seq = $1', [
        r.seq,
        prev,
        hash,
        canonical({ ...body, hash }),
      ]);
      prev = hash;
    }
    // the records alone look fine: only the signed checkpoint tells
    expect(await verifyChain(ledger.records(), [])).toMatchObject({ ok: true, records: 5 });
    expect((await verify(ledger)).firstBroken?.reason).toMatch(/history was rewritten/);
  });

  it('a forged or edited checkpoint does not verify', async () => {
    const { url, ledger } = await tampered('SELECT 1');
    const head = await ledger.head();
    const other = generateKeyPairSync('ed25519').privateKey;
    const forged = signCheckpoint(4, head.hash, new Date().toISOString(), other);
    await sql(
      url,
      'INSERT INTO checkpoints (size, head_hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)',
      [forged.size, forged.headHash, forged.time, forged.keyId, forged.signature],
    );
    expect((await verify(ledger)).firstBroken).toMatchObject({
      seq: 4,
      reason: 'checkpoint at size 4: signature does not verify',
    });
    await sql(url, 'DELETE FROM checkpoints WHERE size = 4');
    expect(await verify(ledger)).toMatchObject({ ok: true });
    await sql(url, `UPDATE checkpoints SET time = '2020-01-01T00:00:00.000Z' WHERE size = 5`);
    expect((await verify(ledger)).firstBroken?.reason).toBe(
      'checkpoint at size 5: signature does not verify',
    );
  });
});

describe('several gate replicas on one ledger', () => {
  it('two processes appending 200 decisions each at once form one chain', async () => {
    const { url, ledger } = await freshLedger();
    const children = ['alpha', 'beta'].map((name) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/audit/postgres-appender.ts', url, name, '200'],
        { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const lines = createInterface({ input: child.stdout });
      const said = (word: string) => {
        const heard = new Promise<void>((resolve, reject) => {
          lines.on('line', (l) => l === word && resolve());
          child.on('exit', (code) => reject(new Error(`${name} exited ${code}: ${stderr}`)));
        });
        heard.catch(() => undefined); // awaited below; a child that dies early fails the test there
        return heard;
      };
      return { child, ready: said('ready'), done: said('done') };
    });
    try {
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.child.stdin.end('go\n');
      await Promise.all(children.map((c) => c.done));
    } finally {
      for (const c of children) if (c.child.exitCode === null) c.child.kill();
    }

    const records = await collect(ledger.records());
    expect(records).toHaveLength(400);
    expect(await verify(ledger)).toEqual({ ok: true, records: 400, checkpoints: 0 });
    const owners = records.map((r) => r.id.split('-')[0]);
    expect(owners.filter((o) => o === 'alpha')).toHaveLength(200);
    // the appends really interleaved
    const switches = owners.filter((o, i) => i > 0 && o !== owners[i - 1]).length;
    expect(switches).toBeGreaterThan(10);
  });
});

describe('when PostgreSQL goes away', () => {
  it('a stopped server fails appends and reads; after it is back, the chain goes on', async () => {
    const { ledger } = await freshLedger();
    await appendMany(ledger, 3);
    await server.stop();
    try {
      const err = await ledger.append(decisionFor('lost'), {}).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/^cannot record the decision in postgresql: \S/);
      expect((err as Error).message).not.toMatch(/\n|[A-Z]/);
      await expect(ledger.head()).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      await expect(ledger.consumed('r')).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      await expect(ledger.query({})).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    } finally {
      await server.start();
    }
    await ledger.append(decisionFor('back'), {});
    expect(await ledger.get('lost')).toBeUndefined();
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 4 });
  });

  it('a connection dropped in the middle of an append fails that append only', async () => {
    const { url, ledger } = await freshLedger();
    await appendMany(ledger, 2);
    // another replica holds the append lock; ours waits for it, and its connection is killed
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, APPEND_LOCK]);
      const pending = ledger.append(decisionFor('dropped'), {}).catch((e: unknown) => e);
      await expect
        .poll(async () => {
          const rows = await holder.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'gate'
               AND wait_event_type = 'Lock'`,
          );
          return rows.rowCount;
        })
        .toBe(1);
      expect(await pending).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    await ledger.append(decisionFor('after'), {});
    expect(await ledger.get('dropped')).toBeUndefined();
    expect(await verify(ledger)).toMatchObject({ ok: true, records: 3 });
  });
});

describe('the gate on a PostgreSQL ledger', () => {
  it('records its decisions, and cannot decide while the ledger is down', async () => {
    const { ledger } = await freshLedger({ checkpoint: { key: privateKey, everyRecords: 2 } });
    const dir = mkdtempSync(path.join(tmpdir(), 'gate-pg-gate-'));
    const config = normalise(
      { policy: { path: path.join(FIXTURES, 'policies', 'ok') } },
      dir,
      'test-config',
    );
    const gate = await createGate(config, { ledger });
    const req = {
      subjects: [{ digest: { algorithm: 'sha256' as const, hex: digestOf('app') } }],
      environment: 'production',
    };

    const allowed = await gate.check(req);
    expect(allowed).toMatchObject({ outcome: 'allow', allow: true });
    expect((await ledger.get(allowed.id))?.decision).toEqual(allowed);

    await server.stop();
    let failed;
    try {
      failed = await gate.check(req);
    } finally {
      await server.start();
    }
    expect(failed).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'LEDGER_UNAVAILABLE' },
    });
    expect(await ledger.get(failed.id)).toBeUndefined();

    const again = await gate.check(req);
    expect(again).toMatchObject({ outcome: 'allow', allow: true });
    expect((await ledger.query({ subject: `sha256:${digestOf('app')}` })).map((r) => r.id)).toEqual(
      [again.id, allowed.id],
    );
    expect(await verify(ledger)).toEqual({ ok: true, records: 2, checkpoints: 1 });
    await gate.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
