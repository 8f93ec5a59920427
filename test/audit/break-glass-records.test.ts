import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BreakGlassConflict,
  makeBreakGlassRecord,
  type BreakGlassEntry,
  type LedgerEntry,
} from '../../src/audit/break-glass-record.js';
import { createIndexAudit } from '../../src/audit/index-audit.js';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createPostgresLedger } from '../../src/audit/postgres.js';
import { GENESIS, makeRecordWithBody, verifyChain } from '../../src/audit/record.js';
import { toRow } from '../../src/audit/sqlite-rows.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { verifyRecords } from '../../src/audit/verify-ledger.js';
import type { Decision } from '../../src/decision.js';
import { startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { decisionFor, digestOf } from './postgres-helpers.js';
import { dropTriggers } from './tamper.js';

/**
 * Break-glass requests in the ledger (src/audit/break-glass-record.ts), in both backends: an
 * accepted, refused or revoked request is a record of the hash chain, read by its request id and
 * never among the decisions' queries; the ledger refuses, under its write lock, a request stored
 * twice, a revocation of what is not stored or already revoked, and any override of a revoked
 * request; a request reusable until it expires overrides many times, a single-use one once. And
 * `gate audit verify` finds a chain edited behind the ledger's back to break those rules.
 */
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

const BACKENDS = {
  sqlite: async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gate-bg-ledger-')), 'ledger.db');
    const l = createSqliteLedger({ path: file });
    opened.push(l);
    return l;
  },
  postgres: async () => {
    const l = await createPostgresLedger({ url: await server.createDatabase() });
    opened.push(l);
    return l;
  },
};

let n = 0;
const entry = (
  action: 'accepted' | 'refused' | 'revoked',
  requestId: string,
  extra: Partial<BreakGlassEntry['event']> = {},
): BreakGlassEntry => ({
  id: `bg-${n++}`,
  time: new Date().toISOString(),
  environment: 'production',
  subjects: [`sha256:${digestOf('app')}`],
  event: { action, requestId, gateVersion: '0.1.0', ...extra },
});

const override = (id: string, requestId: string, reuse?: 'until_expiry'): Decision => {
  const d = decisionFor(id, {
    outcome: 'override',
    violations: ['provenance.required'],
    override: { requester: 'oncall@acme.example', requestId },
  });
  return { ...d, override: { ...d.override!, ...(reuse ? { reuse } : {}) } };
};

const conflict = (p: Promise<unknown>) =>
  p.then(
    () => 'recorded',
    (err: unknown) =>
      err instanceof BreakGlassConflict ? err.refusal : (err as { code?: string }).code,
  );

describe.each(Object.entries(BACKENDS))('break-glass records in %s', (_name, open) => {
  it('are chained with the decisions, found by request id, and left out of decision queries', async () => {
    const l = await open();
    await l.append(decisionFor('d-1'), {});
    await l.appendBreakGlass!(entry('accepted', 'req-stored-1', { bundles: [{ any: 'bundle' }] }));
    await l.appendBreakGlass!(
      entry('refused', 'req-refused-1', {
        refusal: { code: 'BREAK_GLASS_EXPIRED', message: 'expired' },
      }),
    );
    await l.append(override('d-2', 'req-stored-1', 'until_expiry'), {});
    const stored = await l.breakGlassRequest!('req-stored-1');
    expect(stored?.accepted).toMatchObject({
      seq: 2,
      outcome: 'break-glass',
      breakGlass: { action: 'accepted', bundles: [{ any: 'bundle' }] },
    });
    expect(stored?.revoked).toBeUndefined();
    // a refused request is not stored
    expect(await l.breakGlassRequest!('req-refused-1')).toBeUndefined();
    expect((await l.query({})).map((r) => r.id)).toEqual(['d-2', 'd-1']);
    expect((await l.query({ subject: `sha256:${digestOf('app')}` })).map((r) => r.id)).toEqual([
      'd-2',
      'd-1',
    ]);
    expect(await l.get(stored!.accepted!.id)).toBeUndefined();
    const decisions: string[] = [];
    for await (const r of l.records()) decisions.push(r.id);
    expect(decisions).toEqual(['d-1', 'd-2']);
    const all: LedgerEntry[] = [];
    for await (const r of l.entries()) all.push(r);
    expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect((await l.breakGlassRecords!()).map((r) => r.breakGlass.action)).toEqual([
      'refused',
      'accepted',
    ]);
    expect(await l.verify()).toMatchObject({ ok: true, records: 4 });
    expect(await verifyRecords(l, undefined)).toMatchObject({ ok: true, records: 4 });
  });

  it('refuses under the write lock: stored twice, revoked when unknown or twice, an override after revocation', async () => {
    const l = await open();
    await l.appendBreakGlass!(entry('accepted', 'req-a'));
    expect(await conflict(l.appendBreakGlass!(entry('accepted', 'req-a')))).toBe(
      'BREAK_GLASS_EXISTS',
    );
    // a request never stored (used as bundles only) may be revoked; it cannot be stored after
    expect(await conflict(l.appendBreakGlass!(entry('revoked', 'req-bundles-only')))).toBe(
      'recorded',
    );
    expect(await conflict(l.appendBreakGlass!(entry('accepted', 'req-bundles-only')))).toBe(
      'BREAK_GLASS_REVOKED',
    );
    expect(await conflict(l.append(override('d-b1', 'req-bundles-only', 'until_expiry'), {}))).toBe(
      'BREAK_GLASS_REVOKED',
    );
    await l.append(override('d-a1', 'req-a', 'until_expiry'), {});
    expect(await conflict(l.appendBreakGlass!(entry('revoked', 'req-a', { via: 'cli' })))).toBe(
      'recorded',
    );
    expect(await conflict(l.appendBreakGlass!(entry('revoked', 'req-a')))).toBe(
      'BREAK_GLASS_REVOKED',
    );
    // the use that lost the race with the revocation is not recorded as an override
    expect(await conflict(l.append(override('d-a2', 'req-a', 'until_expiry'), {}))).toBe(
      'BREAK_GLASS_REVOKED',
    );
    expect(await conflict(l.append(override('d-a3', 'req-a'), {}))).toBe('BREAK_GLASS_REVOKED');
    expect(await l.get('d-a2')).toBeUndefined();
    expect((await l.breakGlassRequest!('req-a'))?.revoked?.breakGlass).toMatchObject({
      action: 'revoked',
      via: 'cli',
    });
    expect(await l.verify()).toMatchObject({ ok: true, records: 4 });
  });

  it('reuse: until_expiry overrides again and again; a single-use request once, and not after other uses', async () => {
    const l = await open();
    for (const i of [1, 2, 3])
      await l.append(override(`d-u${i}`, 'req-reused', 'until_expiry'), {});
    expect(await l.consumed('req-reused')).toBe(true);
    // a single-use override of a request that already overrode is a replay
    expect(await conflict(l.append(override('d-u4', 'req-reused'), {}))).toBe(
      'BREAK_GLASS_REPLAYED',
    );
    await l.append(override('d-s1', 'req-single'), {});
    expect(await conflict(l.append(override('d-s2', 'req-single'), {}))).toBe(
      'BREAK_GLASS_REPLAYED',
    );
    expect(await l.verify()).toMatchObject({ ok: true, records: 4 });
  });
});

describe('gate audit verify finds a chain edited to break the break-glass rules', () => {
  /** A chain made by hand, every hash right: only the rules can be wrong. */
  function chain(items: Array<Decision | BreakGlassEntry>): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    let prev = GENESIS;
    items.forEach((item, i) => {
      const { record } =
        'event' in item
          ? makeBreakGlassRecord(i + 1, prev, item)
          : makeRecordWithBody(i + 1, prev, item, {});
      out.push(record);
      prev = record.hash;
    });
    return out;
  }
  async function* stream(records: LedgerEntry[]) {
    yield* records;
  }
  // index tables that hold nothing: only what the records themselves say is checked
  const indexes = () =>
    createIndexAudit({
      consumedTable: 'consumed',
      stray: async () => undefined,
      consumed: async () => [],
    });
  const verified = async (items: Array<Decision | BreakGlassEntry>) =>
    verifyChain(stream(chain(items)), [], undefined, { indexes: indexes() });

  it('an override recorded after its request was revoked', async () => {
    const v = await verified([
      entry('accepted', 'req-x'),
      override('d-x1', 'req-x', 'until_expiry'),
      entry('revoked', 'req-x'),
      override('d-x2', 'req-x', 'until_expiry'),
    ]);
    expect(v.firstBroken).toMatchObject({ seq: 4, code: 'BREAK_GLASS_REPLAYED' });
    expect(v.firstBroken!.reason).toContain('revoked');
  });

  it('a request stored twice, revoked twice, or stored after its revocation', async () => {
    expect(
      (await verified([entry('accepted', 'req-y'), entry('accepted', 'req-y')])).firstBroken,
    ).toMatchObject({ seq: 2, code: 'BREAK_GLASS_REPLAYED' });
    expect(
      (await verified([entry('revoked', 'req-z'), entry('accepted', 'req-z')])).firstBroken,
    ).toMatchObject({ seq: 2, code: 'BREAK_GLASS_REPLAYED' });
    // revoked without being stored: a request used only as bundles
    expect(await verified([entry('revoked', 'req-r')])).toMatchObject({ ok: true });
    const twice = [
      entry('accepted', 'req-w'),
      entry('revoked', 'req-w'),
      entry('revoked', 'req-w'),
    ];
    expect((await verified(twice)).firstBroken).toMatchObject({ seq: 3 });
  });

  it('a single-use override after the request was used', async () => {
    const v = await verified([
      override('d-v1', 'req-v', 'until_expiry'),
      override('d-v2', 'req-v'),
    ]);
    expect(v.firstBroken).toMatchObject({ seq: 2, code: 'BREAK_GLASS_REPLAYED' });
    expect(
      await verified([
        override('d-q1', 'req-q', 'until_expiry'),
        override('d-q2', 'req-q', 'until_expiry'),
      ]),
    ).toMatchObject({ ok: true, records: 2 });
  });

  it('in a SQLite file: a revocation deleted, an expiry extended, an override slipped in after a revocation', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gate-bg-tamper-')), 'ledger.db');
    const l = createSqliteLedger({ path: file });
    opened.push(l);
    await l.appendBreakGlass!(
      entry('accepted', 'req-t', {
        request: {
          requestId: 'req-t',
          requester: 'oncall@acme.example',
          justification: 'checkout is down',
          ticket: 'INC-1',
          expiresAt: '2026-01-01T01:00:00.000Z',
          signers: ['oncall@acme.example'],
          environment: 'production',
          subjects: [`sha256:${digestOf('app')}`],
        },
      }),
    );
    await l.appendBreakGlass!(entry('revoked', 'req-t'));
    await l.close();
    const db = new Database(file);
    dropTriggers(db);
    // an override appended after the revocation, hashed right, as an attacker with the file would
    const records = db.prepare('SELECT seq, hash FROM records ORDER BY seq').all() as Array<{
      seq: number;
      hash: string;
    }>;
    const last = records[records.length - 1]!;
    const { record, body } = makeRecordWithBody(
      last.seq + 1,
      last.hash,
      override('d-t1', 'req-t', 'until_expiry'),
      {},
    );
    const row = toRow(record, body);
    db.prepare(
      `INSERT INTO records (seq, id, time, environment, outcome, requester, prev_hash, hash, body)
       VALUES (@seq, @id, @time, @environment, @outcome, @requester, @prev_hash, @hash, @body)`,
    ).run(row);
    db.prepare('INSERT INTO subjects (subject, seq) VALUES (?, ?)').run(
      record.subjects[0],
      record.seq,
    );
    db.prepare('INSERT INTO rules (rule, seq) VALUES (?, ?)').run(record.rules[0], record.seq);
    db.close();
    const slipped = createSqliteLedger({ path: file });
    opened.push(slipped);
    for (const v of [await slipped.verify(), await verifyRecords(slipped, undefined)])
      expect(v.firstBroken).toMatchObject({ seq: 3, code: 'BREAK_GLASS_REPLAYED' });
    // the revocation deleted: the override's record no longer follows the chain
    const edit = (sqlText: string) => {
      const d = new Database(file);
      dropTriggers(d);
      d.exec(sqlText);
      d.close();
    };
    edit(
      `UPDATE records SET body = replace(body, '2026-01-01T01:00:00.000Z', '2027-01-01T01:00:00.000Z') WHERE seq = 1`,
    );
    const extended = createSqliteLedger({ path: file });
    opened.push(extended);
    expect((await extended.verify()).firstBroken).toMatchObject({
      seq: 1,
      code: 'LEDGER_CHAIN_BROKEN',
    });
    edit('DELETE FROM records WHERE seq = 2');
    const deleted = createSqliteLedger({ path: file });
    opened.push(deleted);
    expect((await deleted.verify()).ok).toBe(false);
  });
});
