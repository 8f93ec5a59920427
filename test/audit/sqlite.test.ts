import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerQuery } from '../../src/audit/ledger.js';
import type { VerifyOptions } from '../../src/audit/verify-chain.js';
import {
  canonical,
  checkpointVerifies,
  GENESIS,
  recordedInput,
  recordHash,
  signCheckpoint,
  verifyChain,
  type ChainVerification,
  type LedgerRecord,
} from '../../src/audit/record.js';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createSqliteLedger, type SqliteLedgerOptions } from '../../src/audit/sqlite.js';
import { verifyRecords } from '../../src/audit/verify-ledger.js';
import type { Decision } from '../../src/decision.js';
import { sampleDecision, sha256 } from './sqlite-child.js';
import { dropTriggers } from './tamper.js';

/**
 * The SQLite ledger: append and the auditor's queries; the chain verifies, and any edit made
 * behind the gate's back (raw SQL with the append-only triggers dropped, or bytes written into
 * the file) is caught and names the record; checkpoints; processes appending at once; faults.
 */
const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CHILD = path.join(import.meta.dirname, 'sqlite-child.ts');
const { privateKey: KEY, publicKey: PUBLIC } = crypto.generateKeyPairSync('ed25519');
const OTHER = crypto.generateKeyPairSync('ed25519');

let base: string;
const open: AuditLedger[] = [];
beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'gate-sqlite-'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function ledgerAt(file: string, opts: Omit<SqliteLedgerOptions, 'path'> = {}): AuditLedger {
  const l = createSqliteLedger({ path: file, ...opts });
  open.push(l);
  return l;
}
const fresh = (name: string) => path.join(mkdtempSync(path.join(base, `${name}-`)), 'ledger.db');

/**
 * Both ways of verifying: the generic one over records() (with the index tables read through the
 * ledger: PostgreSQL's way, verifyRecords), and the ledger's own from its stored bytes. They must
 * agree.
 */
async function verifyBoth(
  l: AuditLedger,
  key = PUBLIC,
  opts: Omit<VerifyOptions, 'indexes'> = {},
): Promise<ChainVerification> {
  const generic = await verifyRecords(l, key, opts);
  const own = await l.verify(key, opts);
  const gist = (v: ChainVerification) => ({
    ok: v.ok,
    records: v.records,
    seq: v.firstBroken?.seq,
    id: v.firstBroken?.id,
    code: v.firstBroken?.code,
    table: v.firstBroken?.table,
  });
  expect(gist(own)).toEqual(gist(generic));
  return generic;
}

const subjectOf = (artifact: number) => `sha256:${sha256(`artifact ${artifact}`)}`;

describe('appending and querying', () => {
  const samples = Array.from({ length: 30 }, (_, i) =>
    sampleDecision(i, {
      artifact: i % 5,
      ...(i === 13 || i === 22
        ? { override: { requestId: `req-${i}`, requester: 'oncall@acme.example' } }
        : {}),
    }),
  );
  const ids = (records: LedgerRecord[]) => records.map((r) => r.id);
  const expected = (keep: (d: Decision) => boolean, limit = 100) =>
    samples
      .map((s) => s.decision)
      .filter(keep)
      .reverse()
      .slice(0, limit)
      .map((d) => d.id);
  let ledger: AuditLedger;
  let file: string;

  beforeAll(async () => {
    // a directory that does not exist yet
    file = path.join(base, 'new', 'nested', 'ledger.db');
    ledger = createSqliteLedger({ path: file, checkpoint: { key: KEY, everyRecords: 10 } });
    expect(await ledger.head()).toEqual({ size: 0, hash: GENESIS });
    for (const s of samples.slice(0, 10)) await ledger.append(s.decision, s.input);
    await Promise.all(samples.slice(10).map((s) => ledger.append(s.decision, s.input)));
  });
  afterAll(() => ledger.close());

  it('records each decision as the next link of the chain', async () => {
    const all: LedgerRecord[] = [];
    for await (const r of ledger.records()) all.push(r);
    expect(all.map((r) => r.seq)).toEqual(samples.map((_, i) => i + 1));
    expect(ids(all)).toEqual(samples.map((s) => s.decision.id));
    all.forEach((r, i) => {
      expect(r.prevHash).toBe(i === 0 ? GENESIS : all[i - 1]!.hash);
      expect(recordHash(r)).toBe(r.hash);
    });
    expect(await ledger.head()).toEqual({ size: 30, hash: all[29]!.hash });
  });

  it('gets a record by decision id, with its decision and policy input for replay', async () => {
    const r = await ledger.get(samples[13]!.decision.id);
    expect(r?.seq).toBe(14);
    expect(r?.decision).toEqual(samples[13]!.decision);
    expect(r?.requester).toBe('oncall@acme.example');
    expect(r?.rules).toEqual(['review.present']);
    expect(recordedInput(r!)).toEqual(samples[13]!.input);
    expect(await ledger.get('no-such-decision')).toBeUndefined();
  });

  it('answers queries newest first, by every filter and their combination', async () => {
    const cases: Array<[LedgerQuery, (d: Decision) => boolean, number?]> = [
      [{}, () => true],
      [{ limit: 7 }, () => true, 7],
      [{ subject: subjectOf(3) }, (d) => d.subjects[0]!.digest.sha256 === sha256('artifact 3')],
      [{ environment: 'production', limit: 4 }, (d) => d.environment === 'production', 4],
      [{ outcome: 'deny' }, (d) => d.outcome === 'deny'],
      [{ outcome: 'override' }, (d) => d.outcome === 'override'],
      [{ requester: 'oncall@acme.example' }, (d) => d.override !== undefined],
      [{ rule: 'review.present' }, (d) => d.outcome === 'deny' || d.outcome === 'override'],
      [
        { from: samples[10]!.decision.time, to: samples[20]!.decision.time },
        (d) => d.time >= samples[10]!.decision.time && d.time < samples[20]!.decision.time,
      ],
      // the same instant written with an offset
      [{ from: '2026-01-01T01:00:25+01:00' }, (d) => d.time >= '2026-01-01T00:00:25.000Z'],
      [
        { subject: subjectOf(1), rule: 'review.present', environment: 'dev' },
        (d) =>
          d.subjects[0]!.digest.sha256 === sha256('artifact 1') &&
          d.violations.length > 0 &&
          d.environment === 'dev',
      ],
      [
        { rule: 'review.present', outcome: 'override', requester: 'oncall@acme.example' },
        (d) => d.outcome === 'override',
      ],
      [{ subject: subjectOf(99) }, () => false],
    ];
    for (const [q, keep, limit] of cases) {
      expect(ids(await ledger.query(q)), JSON.stringify(q)).toEqual(expected(keep, limit));
    }
  });

  it('refuses a malformed query with a usage error', async () => {
    await expect(ledger.query({ from: 'yesterday' })).rejects.toMatchObject({
      code: 'USAGE_ERROR',
    });
    await expect(ledger.query({ limit: 0 })).rejects.toMatchObject({ code: 'USAGE_ERROR' });
  });

  it('knows which break-glass requests were used, by index', async () => {
    expect(await ledger.consumed('req-13')).toBe(true);
    expect(await ledger.consumed('req-22')).toBe(true);
    expect(await ledger.consumed('req-14')).toBe(false);
    const db = new Database(file, { readonly: true });
    // single use rests on the chained records, read through the outcome index (no table scan)
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT seq FROM records WHERE outcome = 'override'
           AND json_extract(body, '$.decision.override.requestId') = ? ORDER BY seq LIMIT 1`,
      )
      .all('req-13') as Array<{ detail: string }>;
    const subjectPlan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT r.* FROM subjects s CROSS JOIN records r ON r.seq = s.seq
         WHERE s.subject = ? ORDER BY s.seq DESC LIMIT 100`,
      )
      .all('x') as Array<{ detail: string }>;
    db.close();
    expect(plan.map((p) => p.detail).join(' ')).toMatch(
      /SEARCH records USING INDEX records_outcome/,
    );
    expect(subjectPlan.map((p) => p.detail).join(' ')).toMatch(/SEARCH s USING PRIMARY KEY/);
    expect(subjectPlan.map((p) => p.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
  });

  it('verifies, with checkpoints every 10 records signed by the key', async () => {
    const result = await verifyBoth(ledger);
    expect(result).toEqual({ ok: true, records: 30, checkpoints: 3 });
    expect((await ledger.checkpoints()).map((c) => c.size)).toEqual([10, 20, 30]);
    // a copy handed to an auditor: only the file and the public key
    const copy = path.join(mkdtempSync(path.join(base, 'copy-')), 'ledger.db');
    const source = new Database(file);
    await source.backup(copy);
    source.close();
    const auditor = ledgerAt(copy);
    expect(await verifyChain(auditor.records(), await auditor.checkpoints(), PUBLIC)).toEqual({
      ok: true,
      records: 30,
      checkpoints: 3,
    });
    // another key did not sign them
    expect((await verifyBoth(auditor, OTHER.publicKey)).firstBroken?.reason).toMatch(
      /signature does not verify/,
    );
  });
});

describe('records that cannot be appended', () => {
  it('refuses a replayed break-glass request and a duplicate id alone, and keeps the rest', async () => {
    const l = ledgerAt(fresh('replay'));
    const override = { requestId: 'req-1', requester: 'oncall@acme.example' };
    await l.append(sampleDecision(0, { override }).decision, {});
    const results = await Promise.allSettled([
      l.append(sampleDecision(1).decision, {}),
      l.append(sampleDecision(2, { override }).decision, {}),
      l.append(sampleDecision(3, { id: 'dec-00000001' }).decision, {}),
      l.append(sampleDecision(4).decision, {}),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    const [, replayed, duplicate] = results as PromiseRejectedResult[];
    expect(replayed!.reason).toMatchObject({ code: 'BREAK_GLASS_REPLAYED' });
    expect(replayed!.reason.message).toMatch(
      /break-glass request req-1 was already used by record 1/,
    );
    expect(duplicate!.reason).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    expect(duplicate!.reason.message).toMatch(/^cannot record decision dec-00000001 in .*unique/i);
    expect(duplicate!.reason.message).not.toContain('\n');
    expect((await l.head()).size).toBe(3);
    expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 3 });
  });

  it('refuses appends after close', async () => {
    const l = createSqliteLedger({ path: fresh('closed') });
    await l.append(sampleDecision(0).decision, {});
    await l.close();
    await expect(l.append(sampleDecision(1).decision, {})).rejects.toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
    });
  });

  it('refuses a checkpoint key that is not an ed25519 private key', () => {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    for (const key of [rsa, PUBLIC])
      expect(() => createSqliteLedger({ path: fresh('key'), checkpoint: { key } })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
  });
});

/** SQL that removes every record after `size`, with its index rows. */
const cut = (size: number) =>
  ['records', 'subjects', 'rules', 'consumed']
    .map((t) => `DELETE FROM ${t} WHERE seq > ${size}`)
    .join('; ');

describe('tampering behind the gate', () => {
  const N = 20;
  const TARGET = 7;
  let pristine: string;
  const all: LedgerRecord[] = [];

  beforeAll(async () => {
    pristine = fresh('pristine');
    const l = createSqliteLedger({ path: pristine, checkpoint: { key: KEY, everyRecords: 5 } });
    for (let i = 0; i < N; i++) {
      const s = sampleDecision(i);
      await l.append(s.decision, s.input);
    }
    for await (const r of l.records()) all.push(r);
    await l.close();
  });

  /** A copy of the pristine ledger, edited as an attacker would: triggers dropped, raw SQL. */
  function tampered(sql: string, ...params: unknown[]): AuditLedger {
    const file = fresh('tampered');
    copyFileSync(pristine, file);
    const db = new Database(file);
    dropTriggers(db);
    if (params.length) db.prepare(sql).run(...params);
    else db.exec(sql);
    db.close();
    return ledgerAt(file);
  }

  it('the pristine ledger verifies, and its triggers refuse updates and deletes', async () => {
    const file = fresh('triggers');
    copyFileSync(pristine, file);
    expect(await verifyBoth(ledgerAt(file))).toEqual({ ok: true, records: N, checkpoints: 4 });
    const db = new Database(file);
    expect(() => db.exec(`UPDATE records SET outcome = 'allow' WHERE seq = 2`)).toThrow(
      /append-only/,
    );
    expect(() => db.exec('DELETE FROM records WHERE seq = 20')).toThrow(/append-only/);
    expect(() => db.exec('DELETE FROM checkpoints')).toThrow(/append-only/);
    expect(() => db.exec(`UPDATE subjects SET subject = 'x'`)).toThrow(/append-only/);
    db.close();
  });

  const other = sha256('forged');
  const edits: Array<[string, string, unknown]> = [
    ['id', 'UPDATE records SET id = ? WHERE seq = ?', 'forged-id'],
    ['time', 'UPDATE records SET time = ? WHERE seq = ?', '2020-01-01T00:00:00.000Z'],
    ['environment', 'UPDATE records SET environment = ? WHERE seq = ?', 'dev-forged'],
    ['outcome', 'UPDATE records SET outcome = ? WHERE seq = ?', 'override'],
    ['requester', 'UPDATE records SET requester = ? WHERE seq = ?', 'mallory@evil.example'],
    ['prev_hash', 'UPDATE records SET prev_hash = ? WHERE seq = ?', other],
    ['hash', 'UPDATE records SET hash = ? WHERE seq = ?', other],
    [
      'body: the decision',
      `UPDATE records SET body = json_set(body, '$.decision.allow', json(?)) WHERE seq = ?`,
      'false',
    ],
    [
      "body: the body's copy of an indexed field",
      `UPDATE records SET body = json_set(body, '$.outcome', ?) WHERE seq = ?`,
      'override',
    ],
    [
      'body: the recorded policy input',
      `UPDATE records SET body = json_set(body, '$.input', ?) WHERE seq = ?`,
      'H4sIAAAAAAAAA6uuBQBDv6ajAgAAAA==',
    ],
    ['body: not json', 'UPDATE records SET body = ? WHERE seq = ?', 'garbage'],
  ];
  for (const [field, sql, value] of edits) {
    it(`an edited ${field} fails verification and names the record`, async () => {
      const result = await verifyBoth(tampered(sql, value, TARGET));
      expect(result.ok).toBe(false);
      expect(result.firstBroken?.seq).toBe(TARGET);
      expect([all[TARGET - 1]!.id, value]).toContain(result.firstBroken?.id);
      expect(result.records).toBe(TARGET - 1);
    });
  }

  it('an edited seq of the last record names it; of another, it shows as a gap', async () => {
    const last = await verifyBoth(tampered('UPDATE records SET seq = 21 WHERE seq = 20'));
    expect(last.firstBroken).toMatchObject({ seq: 21, id: all[19]!.id });
    const moved = await verifyBoth(tampered('UPDATE records SET seq = 99 WHERE seq = ?', TARGET));
    expect(moved.firstBroken).toMatchObject({ seq: TARGET + 1, reason: /expected record 7/ });
  });

  it('bytes written straight into the file fail verification and name the record', async () => {
    const file = fresh('bytes');
    copyFileSync(pristine, file);
    const bytes = readFileSync(file);
    const needle = Buffer.from(all[TARGET - 1]!.decision.digests.input!);
    const at = bytes.indexOf(needle);
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf(needle, at + 1)).toBe(-1);
    bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61; // one hex digit, same length
    writeFileSync(file, bytes);
    const result = await verifyBoth(ledgerAt(file));
    expect(result.firstBroken).toMatchObject({ seq: TARGET, id: all[TARGET - 1]!.id });
  });

  it('a deleted record is caught', async () => {
    const result = await verifyBoth(tampered('DELETE FROM records WHERE seq = ?', TARGET));
    expect(result.firstBroken).toMatchObject({ seq: TARGET + 1, reason: /expected record 7/ });
  });

  it('reordered records are caught', async () => {
    const file = fresh('reorder');
    copyFileSync(pristine, file);
    const db = new Database(file);
    db.exec('DROP TRIGGER records_no_update');
    db.exec(`UPDATE records SET seq = -1 WHERE seq = 7;
             UPDATE records SET seq = 7 WHERE seq = 8;
             UPDATE records SET seq = 8 WHERE seq = -1;`);
    db.close();
    const result = await verifyBoth(ledgerAt(file));
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.seq).toBe(7);
  });

  it('a tail truncated below a checkpoint is caught', async () => {
    const result = await verifyBoth(tampered(cut(12)));
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.code).toBe('LEDGER_TRUNCATED');
    expect(result.firstBroken?.reason).toMatch(/checkpoint at size 15: .*records were removed/);
  });

  it('a tail truncated with its checkpoints is caught by a checkpoint the auditor kept', async () => {
    const kept = (await ledgerAt(pristine).checkpoints()).at(-1)!;
    const l = tampered(`${cut(12)}; DELETE FROM checkpoints WHERE size > 12`);
    expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 12 });
    const result = await verifyBoth(l, PUBLIC, { external: [kept] });
    expect(result.firstBroken).toMatchObject({ seq: 20, code: 'LEDGER_TRUNCATED' });
    expect(result.firstBroken?.reason).toMatch(
      /checkpoint held outside at size 20: .*records were removed/,
    );
  });

  it('forged checkpoints are caught', async () => {
    const head12 = all[11]!;
    const forged = signCheckpoint(12, head12.hash, new Date().toISOString(), OTHER.privateKey);
    const insert =
      'INSERT INTO checkpoints (size, head_hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)';
    const byOther = await verifyBoth(
      tampered(insert, forged.size, forged.headHash, forged.time, forged.keyId, forged.signature),
    );
    expect(byOther.firstBroken?.reason).toMatch(/checkpoint at size 12: signature does not verify/);
    const moved = await verifyBoth(
      tampered('UPDATE checkpoints SET head_hash = ? WHERE size = 10', head12.hash),
    );
    expect(moved.firstBroken?.reason).toMatch(/checkpoint at size 10: signature does not verify/);
  });

  it('history rewritten with a consistent chain is caught by the signed checkpoints', async () => {
    const file = fresh('rewrite');
    copyFileSync(pristine, file);
    const db = new Database(file);
    db.exec('DROP TRIGGER records_no_update');
    const update = db.prepare('UPDATE records SET prev_hash = ?, hash = ?, body = ? WHERE seq = ?');
    let prev = all[TARGET - 2]!.hash;
    for (const r of all.slice(TARGET - 1)) {
      const { hash: _old, ...rest } = r;
      const body = {
        ...rest,
        prevHash: prev,
        ...(r.seq === TARGET ? { decision: { ...r.decision, allow: !r.decision.allow } } : {}),
      };
      const hash = recordHash(body);
      update.run(prev, hash, canonical(body), r.seq);
      prev = hash;
    }
    db.close();
    const l = ledgerAt(file);
    expect(await verifyChain(l.records(), [])).toMatchObject({ ok: true, records: N });
    const result = await verifyBoth(l);
    expect(result.firstBroken?.reason).toMatch(/checkpoint at size 10: .*history was rewritten/);
  });
});

describe('checkpoints', () => {
  it('are signed every N records, in the transaction that appends', async () => {
    const l = ledgerAt(fresh('every'), { checkpoint: { key: KEY, everyRecords: 5 } });
    for (let i = 0; i < 7; i++) await l.append(sampleDecision(i).decision, {});
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => l.append(sampleDecision(7 + i).decision, {})),
    );
    const checkpoints = await l.checkpoints();
    expect(checkpoints.map((c) => c.size)).toEqual([5, 10, 15, 20]);
    const hashes = new Map<number, string>();
    for await (const r of l.records()) hashes.set(r.seq, r.hash);
    // cosign's hint form, as every key id the gate reports
    const keyId = Buffer.from(
      sha256Hex(crypto.createPublicKey(KEY).export({ format: 'der', type: 'spki' })),
      'hex',
    ).toString('base64');
    for (const c of checkpoints) {
      expect(c.headHash).toBe(hashes.get(c.size));
      expect(c.keyId).toBe(keyId);
      expect(checkpointVerifies(c, PUBLIC)).toBe(true);
    }
  });

  it('are signed once the last one is S seconds old, on append', async () => {
    let t = Date.UTC(2026, 5, 1);
    const l = ledgerAt(fresh('seconds'), {
      checkpoint: { key: KEY, everyRecords: 100, everySeconds: 60 },
      now: () => new Date(t),
    });
    await l.append(sampleDecision(0).decision, {});
    await l.append(sampleDecision(1).decision, {});
    expect(await l.checkpoints()).toEqual([]);
    t += 61_000;
    await l.append(sampleDecision(2).decision, {});
    await l.append(sampleDecision(3).decision, {});
    t += 30_000;
    await l.append(sampleDecision(4).decision, {});
    expect((await l.checkpoints()).map((c) => [c.size, c.time])).toEqual([
      [3, new Date(Date.UTC(2026, 5, 1) + 61_000).toISOString()],
    ]);
    expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 5, checkpoints: 1 });
  });

  it('are signed for a quiet ledger by the timer', async () => {
    const l = ledgerAt(fresh('timer'), {
      checkpoint: { key: KEY, everyRecords: 100, everySeconds: 0.05 },
    });
    await l.append(sampleDecision(0).decision, {});
    for (let i = 0; i < 100 && (await l.checkpoints()).length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await l.checkpoints()).map((c) => c.size)).toEqual([1]);
  });
});

const sha256Hex = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('processes appending at once', () => {
  it('two processes appending 200 records each form one chain of 400', async () => {
    const file = fresh('procs');
    const child = (tag: string) =>
      run(process.execPath, ['--import', 'tsx', CHILD, 'append', file, '200', tag], {
        cwd: ROOT,
        timeout: 120_000,
      });
    const [a, b] = await Promise.all([child('A'), child('B')]);
    expect(a.stdout).toMatch(/^done \d+ \d+\n$/);
    expect(b.stdout).toMatch(/^done \d+ \d+\n$/);
    const l = ledgerAt(file);
    expect(await verifyBoth(l)).toEqual({ ok: true, records: 400, checkpoints: 0 });
    const order = new Map<string, number[]>([
      ['A', []],
      ['B', []],
    ]);
    for await (const r of l.records()) {
      const [tag, n] = r.id.split('-');
      order.get(tag!)!.push(Number(n));
    }
    const each = Array.from({ length: 200 }, (_, i) => i);
    expect(order.get('A')).toEqual(each);
    expect(order.get('B')).toEqual(each);
  });
});

describe('faults', () => {
  it('a database locked by another process: waits, then LEDGER_UNAVAILABLE; recovers', async () => {
    const file = fresh('locked');
    const l = ledgerAt(file, { busyTimeoutMs: 200 });
    await l.append(sampleDecision(0).decision, {});
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const start = Date.now();
    const err = await l.append(sampleDecision(1).decision, {}).catch((e: unknown) => e);
    expect(Date.now() - start).toBeGreaterThanOrEqual(150);
    expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    expect((err as Error).message).toMatch(
      /locked \(another process held the write lock for 200 ms\)/,
    );
    holder.exec('ROLLBACK');
    holder.close();
    await l.append(sampleDecision(1).decision, {});
    expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 2 });
  });

  it("a lock held past the caller's limit: LEDGER_UNAVAILABLE then, and nothing written later", async () => {
    const file = fresh('locked-until');
    const l = ledgerAt(file, { busyTimeoutMs: 5000 });
    await l.append(sampleDecision(0).decision, {});
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const start = Date.now();
    const err = await l
      .append(sampleDecision(1).decision, {}, { until: start + 150 })
      .catch((e: unknown) => e);
    const waited = Date.now() - start;
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(2000);
    expect(err).toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
      message: expect.stringMatching(
        /locked \(another process held the write lock for \d+ ms, past the decision's deadline\)/,
      ),
    });
    holder.exec('ROLLBACK');
    holder.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(await l.head()).toMatchObject({ size: 1 });
  });

  it('acknowledges an append only once the write-ahead log is fsynced, off the event loop', async () => {
    const file = fresh('fsync');
    const synced: Array<() => void> = [];
    const fds: number[] = [];
    const l = ledgerAt(file, {
      fsync: (fd) => {
        fds.push(fd);
        return new Promise<void>((resolve) => synced.push(resolve));
      },
    });
    let acked = false;
    const pending = l.append(sampleDecision(0).decision, {}).then(() => (acked = true));
    while (synced.length === 0) await new Promise((r) => setTimeout(r, 5));
    // committed (another connection sees it) but not yet acknowledged: the disk has not said so
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: 1 });
    reader.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(acked).toBe(false);
    // the descriptor synced is the write-ahead log's
    expect(readlinkSync(`/proc/self/fd/${fds[0]}`)).toBe(`${realpathSync(file)}-wal`);
    synced[0]!();
    await pending;
    expect(acked).toBe(true);
  });

  it('a failed fsync fails the append with LEDGER_UNAVAILABLE, and the ledger recovers', async () => {
    const file = fresh('fsync-fails');
    let fail = true;
    const l = ledgerAt(file, {
      fsync: async () => {
        if (fail) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
    });
    await expect(l.append(sampleDecision(0).decision, {})).rejects.toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
    });
    fail = false;
    await l.append(sampleDecision(1).decision, {});
    // the unacknowledged record is there too: fail closed, nothing acknowledged is lost
    expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 2 });
  });

  async function expectUnavailable(l: AuditLedger, message: RegExp) {
    const coded = { code: 'LEDGER_UNAVAILABLE', message: expect.stringMatching(message) };
    await expect(l.append(sampleDecision(0).decision, {})).rejects.toMatchObject(coded);
    await expect(l.head()).rejects.toMatchObject(coded);
    await expect(l.consumed('req-1')).rejects.toMatchObject(coded);
    await expect(l.query({ subject: subjectOf(0) })).rejects.toMatchObject(coded);
    await expect(l.get('x')).rejects.toMatchObject(coded);
    await expect(l.checkpoints()).rejects.toMatchObject(coded);
    await expect(verifyChain(l.records(), [])).rejects.toMatchObject(coded);
    await expect(l.verify()).rejects.toMatchObject(coded);
  }

  it('a file that is not a database: LEDGER_UNAVAILABLE, never a crash', async () => {
    const file = fresh('garbage');
    writeFileSync(file, 'this is not a database\n'.repeat(500));
    await expectUnavailable(ledgerAt(file), /not a database/);
  });

  it('a corrupted ledger (header overwritten): LEDGER_UNAVAILABLE', async () => {
    const file = fresh('corrupt');
    const l = createSqliteLedger({ path: file });
    await l.append(sampleDecision(0).decision, {});
    await l.close();
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 0, 100);
    writeFileSync(file, bytes);
    await expectUnavailable(ledgerAt(file), /not a database/);
  });

  it('another SQLite database, or a path under a file: LEDGER_UNAVAILABLE', async () => {
    const file = fresh('foreign');
    const db = new Database(file);
    db.exec('CREATE TABLE notes (text TEXT)');
    db.close();
    await expectUnavailable(ledgerAt(file), /is a database, but not a gate ledger/);
    await expectUnavailable(ledgerAt(path.join(file, 'ledger.db')), /cannot open the ledger/);
  });

  it('a read-only ledger: LEDGER_UNAVAILABLE, and it recovers once writable', async () => {
    const dir = mkdtempSync(path.join(base, 'ro-'));
    const maybe = readOnly(dir);
    // Never skipped: as root (CI) a tmpfs is remounted read-only, otherwise chmod does it.
    expect(
      maybe,
      'a read-only directory needs root to mount a tmpfs, or a non-root user for chmod',
    ).toBeDefined();
    const ro = maybe!;
    try {
      const file = path.join(dir, 'ledger.db');
      const first = createSqliteLedger({ path: file });
      await first.append(sampleDecision(0).decision, {});
      await first.close();
      ro.protect();
      const l = ledgerAt(file);
      const err = await l.append(sampleDecision(1).decision, {}).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/read-?only|unable to open/);
      ro.release();
      await l.append(sampleDecision(1).decision, {});
      expect(await verifyBoth(l)).toMatchObject({ ok: true, records: 2 });
    } finally {
      await Promise.all(open.splice(0).map((l) => l.close()));
      ro.release();
      ro.cleanup();
    }
  });

  it('a full disk: the append fails with LEDGER_UNAVAILABLE and the chain still verifies', async () => {
    const dir = mkdtempSync(path.join(base, 'full-'));
    // A real full disk: a 512 KiB tmpfs. Mounting needs root, as `make test` has in CI.
    expect(mount(dir, 'size=512k'), 'mounting a small tmpfs needs root').toBe(true);
    try {
      const file = path.join(dir, 'ledger.db');
      const l = ledgerAt(file);
      await l.append(sampleDecision(0).decision, sampleDecision(0).input);
      // leave room for a few records only
      const filler = path.join(dir, 'filler');
      const free = () =>
        Number(execFileSync('df', ['-B1', '--output=avail', dir]).toString().split('\n')[1]);
      writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 96 * 1024)));
      let acknowledged = 1;
      let failure: unknown;
      for (let i = 1; i < 500 && !failure; i++) {
        const s = sampleDecision(i);
        await l.append(s.decision, s.input).then(
          () => acknowledged++,
          (e: unknown) => (failure = e),
        );
      }
      expect(failure).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      expect((failure as Error).message).toMatch(/full/);
      expect((await l.head()).size).toBe(acknowledged);
      expect(await verifyChain(l.records(), [])).toMatchObject({ ok: true, records: acknowledged });
      // space again: the ledger goes on
      rmSync(filler);
      await l.append(sampleDecision(1000).decision, {});
      expect(await verifyBoth(l)).toMatchObject({ ok: true, records: acknowledged + 1 });
    } finally {
      await Promise.all(open.splice(0).map((l) => l.close()));
      execFileSync('umount', [dir]);
    }
  });
});

function mount(dir: string, options: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A directory that can be made read-only for real: a tmpfs remounted ro as root, else chmod. */
function readOnly(dir: string) {
  if (process.getuid?.() === 0) {
    if (!mount(dir, 'size=4m')) return undefined;
    return {
      protect: () => execFileSync('mount', ['-o', 'remount,ro', dir]),
      release: () => execFileSync('mount', ['-o', 'remount,rw', dir]),
      cleanup: () => execFileSync('umount', [dir]),
    };
  }
  mkdirSync(dir, { recursive: true });
  return {
    protect: () => {
      chmodSync(dir, 0o555);
      chmodSync(path.join(dir, 'ledger.db'), 0o444);
    },
    release: () => {
      chmodSync(dir, 0o755);
      chmodSync(path.join(dir, 'ledger.db'), 0o644);
    },
    cleanup: () => undefined,
  };
}
