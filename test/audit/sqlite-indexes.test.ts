import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeRecordWithBody } from '../../src/audit/record.js';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { sampleDecision, sha256 } from './sqlite-child.js';
import { tamperedCopy } from './tamper.js';

/**
 * Item 2 of issue 8 on the SQLite ledger: what the ledger answers (single use of a break-glass
 * request, queries by subject and rule) rests on the chained records, and `gate audit verify`
 * proves every index table equal to them, both ways. Each attack edits a copy of a real ledger
 * as someone holding the file would: triggers dropped, raw SQL.
 */
const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CHILD = path.join(import.meta.dirname, 'sqlite-child.ts');
const { publicKey: PUBLIC } = crypto.generateKeyPairSync('ed25519');
const ONCALL = 'oncall@acme.example';

let base: string;
let pristine: string;
const open: AuditLedger[] = [];
beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'gate-indexes-'));
  pristine = path.join(base, 'pristine.db');
  // 8 records about artifacts 0..3; record 3 overrides with req-1, record 6 denies
  const l = createSqliteLedger({ path: pristine });
  for (let i = 0; i < 8; i++) {
    const s = sampleDecision(i, {
      artifact: i % 4,
      ...(i === 2 ? { override: { requestId: 'req-1', requester: ONCALL } } : {}),
    });
    await l.append(s.decision, s.input);
  }
  await l.close();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function tampered(sql: string): AuditLedger {
  const l = tamperedCopy(pristine, base, sql);
  open.push(l);
  return l;
}

const subjectOf = (artifact: number) => `sha256:${sha256(`artifact ${artifact}`)}`;
const override = (i: number, requestId: string) =>
  sampleDecision(i, { id: `again-${i}`, override: { requestId, requester: ONCALL } }).decision;

describe('the single-use check rests on the chained records', () => {
  it('a deleted consumed row does not let the request override again, and verify names it', async () => {
    const l = tampered('DELETE FROM consumed');
    expect(await l.consumed('req-1')).toBe(true);
    await expect(l.append(override(20, 'req-1'), {})).rejects.toMatchObject({
      code: 'BREAK_GLASS_REPLAYED',
      message: expect.stringMatching(/req-1 was already used by record 3/),
    });
    expect((await l.head()).size).toBe(8);
    const result = await l.verify(PUBLIC);
    expect(result.firstBroken).toMatchObject({
      seq: 3,
      id: 'dec-00000002',
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'consumed',
    });
    expect(result.firstBroken?.reason).toMatch(/has no row for break-glass request req-1/);
  });

  it('a forged consumed row is caught by verify, and the gate cannot decide on that request', async () => {
    const l = tampered(`INSERT INTO consumed (request_id, seq) VALUES ('req-9', 5)`);
    expect(await l.consumed('req-9')).toBe(false);
    await expect(l.append(override(20, 'req-9'), {})).rejects.toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
      message: expect.stringMatching(/consumed index names break-glass request req-9/),
    });
    expect((await l.verify(PUBLIC)).firstBroken).toMatchObject({
      seq: 5,
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'consumed',
    });
  });

  it('a second override of one request, chained in by hand, fails verify as a replay', async () => {
    const file = path.join(base, 'twice.db');
    copyFileSync(pristine, file);
    const db = new Database(file);
    const head = db.prepare('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1').get() as {
      seq: number;
      hash: string;
    };
    const { record, body } = makeRecordWithBody(head.seq + 1, head.hash, override(9, 'req-1'), {});
    db.prepare(
      `INSERT INTO records (seq, id, time, environment, outcome, requester, prev_hash, hash, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      record.seq,
      record.id,
      record.time,
      record.environment,
      'override',
      ONCALL,
      record.prevHash,
      record.hash,
      body,
    );
    for (const s of record.subjects)
      db.prepare('INSERT INTO subjects VALUES (?, ?)').run(s, record.seq);
    for (const r of record.rules) db.prepare('INSERT INTO rules VALUES (?, ?)').run(r, record.seq);
    db.close();
    const l = createSqliteLedger({ path: file });
    open.push(l);
    expect((await l.verify(PUBLIC)).firstBroken).toMatchObject({
      seq: 9,
      id: 'again-9',
      code: 'BREAK_GLASS_REPLAYED',
      reason: expect.stringMatching(/req-1 already overrode record 3/),
    });
  });
});

describe('verify proves every index equal to the records', () => {
  it('deleted subject rows hide decisions from queries, and verify names the first one', async () => {
    const l = tampered(`DELETE FROM subjects WHERE subject = '${subjectOf(1)}'`);
    expect(await l.query({ subject: subjectOf(1) })).toEqual([]);
    const result = await l.verify(PUBLIC);
    expect(result.ok).toBe(false);
    expect(result.firstBroken).toMatchObject({
      seq: 2,
      id: 'dec-00000001',
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'subjects',
    });
    expect(result.firstBroken?.reason).toContain(subjectOf(1));
  });

  it.each([
    ['rules', `DELETE FROM rules WHERE rule = 'review.present' AND seq = 3`, 3],
    ['subjects', `INSERT INTO subjects VALUES ('${subjectOf(9)}', 4)`, 4],
    ['rules', `INSERT INTO rules VALUES ('tests.passed', 1)`, 1],
    ['subjects', `INSERT INTO subjects VALUES ('${subjectOf(0)}', 99)`, 99],
    ['consumed', `INSERT INTO consumed VALUES ('req-7', 99)`, 99],
  ])('a row missing from or added to %s is named (%s)', async (table, sql, seq) => {
    const result = await tampered(sql).verify(PUBLIC);
    expect(result.firstBroken).toMatchObject({ seq, code: 'LEDGER_INDEX_MISMATCH', table });
  });

  it.each([
    ['outcome', `UPDATE records SET outcome = 'allow' WHERE seq = 6`],
    ['environment', `UPDATE records SET environment = 'dev' WHERE seq = 6`],
  ])('an edited %s column is an index mismatch in records', async (column, sql) => {
    const result = await tampered(sql).verify(PUBLIC);
    expect(result.firstBroken).toMatchObject({
      seq: 6,
      code: 'LEDGER_INDEX_MISMATCH',
      table: 'records',
      reason: expect.stringContaining(column),
    });
  });

  it('the pristine ledger verifies with every index', async () => {
    const l = createSqliteLedger({ path: pristine });
    open.push(l);
    expect(await l.verify(PUBLIC)).toEqual({ ok: true, records: 8, checkpoints: 0 });
  });
});

describe('two processes overriding with the same requests at once', () => {
  it('each request overrides once; every loser is told BREAK_GLASS_REPLAYED', async () => {
    const file = path.join(base, 'race.db');
    const created = createSqliteLedger({ path: file });
    await created.head(); // the schema exists before the children race
    await created.close();
    const child = (tag: string) =>
      run(process.execPath, ['--import', 'tsx', CHILD, 'override', file, '20', tag], {
        cwd: ROOT,
        timeout: 60_000,
      });
    const outs = await Promise.all([child('A'), child('B')]);
    const results = outs.flatMap((o) => o.stdout.trim().split('\n'));
    expect(results).toHaveLength(40);
    for (let j = 0; j < 20; j++) {
      const mine = results.filter((r) => r.startsWith(`req-${j} `)).map((r) => r.split(' ')[1]);
      expect(mine.sort(), `req-${j}`).toEqual(['BREAK_GLASS_REPLAYED', 'ok']);
    }
    const l = createSqliteLedger({ path: file });
    open.push(l);
    expect(await l.verify(PUBLIC)).toEqual({ ok: true, records: 20, checkpoints: 0 });
  });
});
