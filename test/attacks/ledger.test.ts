import crypto from 'node:crypto';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLedger } from '../../src/audit/ledger.js';
import type { ChainVerification } from '../../src/audit/record.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { sampleDecision, sha256 } from '../audit/sqlite-child.js';
import { tamperedCopy } from '../audit/tamper.js';
import { tmp } from './gate-support.js';
import { expectRefused, reportAttack } from './report.js';

/**
 * Attack corpus: the ledger, as someone holding its file would attack it (append-only triggers
 * dropped, raw SQL): truncated, reordered, one record or one index row edited, and the earlier
 * attack pass's unverified indexes (the single-use check of break-glass requests). Each is found
 * by the ledger's own verification with its code and the record it names, or refused on append.
 */
const { privateKey: KEY, publicKey: PUBLIC } = crypto.generateKeyPairSync('ed25519');
const N = 12;
const ONCALL = 'oncall@acme.example';

let dir: string;
let pristine: string;
const open: AuditLedger[] = [];

beforeAll(async () => {
  dir = tmp('ledger');
  pristine = path.join(dir, 'pristine.db');
  const l = createSqliteLedger({ path: pristine, checkpoint: { key: KEY, everyRecords: 5 } });
  for (let i = 0; i < N; i++) {
    const s = sampleDecision(
      i,
      i === 2 ? { override: { requestId: 'req-1', requester: ONCALL } } : {},
    );
    await l.append(s.decision, s.input);
  }
  await l.close();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});
afterAll(async () => {
  await Promise.all(open.map((l) => l.close()));
});

function tampered(sql: string): AuditLedger {
  const l = tamperedCopy(pristine, dir, sql);
  open.push(l);
  return l;
}

/** Verifies, records the attack, and asserts the code of the first broken record. */
async function expectBroken(
  name: string,
  l: AuditLedger,
  code: string,
  seq?: number,
): Promise<ChainVerification> {
  const v = await l.verify(PUBLIC);
  reportAttack(name, undefined, v.ok ? 'verified' : 'broken', v.firstBroken?.code);
  expect(v.ok, `${name}: the ledger still verifies`).toBe(false);
  expect(v.firstBroken?.code).toBe(code);
  if (seq !== undefined) expect(v.firstBroken?.seq).toBe(seq);
  return v;
}

describe('a ledger edited behind the gate', () => {
  it('the pristine ledger verifies, so every failure below is the edit', async () => {
    const l = createSqliteLedger({ path: pristine });
    open.push(l);
    expect(await l.verify(PUBLIC)).toMatchObject({ ok: true, records: N });
  });

  it('truncated below a checkpoint: LEDGER_TRUNCATED', async () => {
    await expectBroken(
      'ledger truncated',
      tampered(
        'DELETE FROM records WHERE seq > 7; DELETE FROM subjects WHERE seq > 7; DELETE FROM rules WHERE seq > 7',
      ),
      'LEDGER_TRUNCATED',
    );
  });

  it('reordered: two records swapped break the chain at the first', async () => {
    await expectBroken(
      'ledger reordered',
      tampered(`UPDATE records SET seq = -1 WHERE seq = 7;
                UPDATE records SET seq = 7 WHERE seq = 8;
                UPDATE records SET seq = 8 WHERE seq = -1;`),
      'LEDGER_CHAIN_BROKEN',
      7,
    );
  });

  it('one record edited (an allow made of a deny, in the body): LEDGER_CHAIN_BROKEN naming it', async () => {
    await expectBroken(
      'ledger record edited',
      tampered(
        `UPDATE records SET body = json_set(body, '$.decision.allow', json('true')) WHERE seq = 6`,
      ),
      'LEDGER_CHAIN_BROKEN',
      6,
    );
  });

  it('one record deleted from the middle: the chain breaks after it', async () => {
    await expectBroken(
      'ledger record deleted',
      tampered('DELETE FROM records WHERE seq = 4'),
      'LEDGER_CHAIN_BROKEN',
      5,
    );
  });

  it('one index row edited: LEDGER_INDEX_MISMATCH naming the record', async () => {
    const v = await expectBroken(
      'ledger index row edited (outcome column)',
      tampered(`UPDATE records SET outcome = 'allow' WHERE seq = 6`),
      'LEDGER_INDEX_MISMATCH',
      6,
    );
    expect(v.firstBroken?.table).toBe('records');
    await expectBroken(
      'ledger index row edited (subjects)',
      tampered(`UPDATE subjects SET subject = 'sha256:${sha256('elsewhere')}' WHERE seq = 3`),
      'LEDGER_INDEX_MISMATCH',
      3,
    );
  });
});

describe('unverified ledger indexes (the earlier attack pass)', () => {
  const override = (i: number, requestId: string) =>
    sampleDecision(i, { id: `again-${i}`, override: { requestId, requester: ONCALL } }).decision;

  it('a deleted consumed row does not let a break-glass request override again', async () => {
    const l = tampered('DELETE FROM consumed');
    await expectRefused(
      'consumed index row deleted, request replayed',
      undefined,
      () => l.append(override(20, 'req-1'), {}),
      'BREAK_GLASS_REPLAYED',
    );
    expect((await l.head()).size).toBe(N);
    await expectBroken('consumed index row deleted (verify)', l, 'LEDGER_INDEX_MISMATCH', 3);
  });

  it('a forged consumed row: the gate cannot decide on that request, and verify names it', async () => {
    const l = tampered(`INSERT INTO consumed (request_id, seq) VALUES ('req-9', 5)`);
    await expectRefused(
      'consumed index row forged',
      undefined,
      () => l.append(override(20, 'req-9'), {}),
      'LEDGER_UNAVAILABLE',
    );
    await expectBroken('consumed index row forged (verify)', l, 'LEDGER_INDEX_MISMATCH', 5);
  });

  it('a checkpoint re-signed by another key is refused', async () => {
    const file = path.join(dir, 'resigned.db');
    copyFileSync(pristine, file);
    const db = new Database(file);
    db.exec('DROP TRIGGER IF EXISTS checkpoints_no_update');
    db.prepare(`UPDATE checkpoints SET signature = ? WHERE size = 5`).run(
      Buffer.alloc(64, 1).toString('base64'),
    );
    db.close();
    const l = createSqliteLedger({ path: file });
    open.push(l);
    await expectBroken('ledger checkpoint forged', l, 'LEDGER_CHECKPOINT_INVALID');
  });
});
