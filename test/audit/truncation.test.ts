import crypto from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLedger } from '../../src/audit/open.js';
import { canonical, recordHash, type Checkpoint } from '../../src/audit/record.js';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { parseCheckpoints } from '../../src/audit/verify-ledger.js';
import { normalise } from '../../src/config.js';
import { createOutbox } from '../../src/notify/outbox.js';
import { sampleDecision } from './sqlite-child.js';
import { dropTriggers, tamperedCopy } from './tamper.js';

/**
 * Item 3 of issue 8 on the SQLite ledger: the newest records deleted together with their
 * checkpoint rows. Checkpoints must come at the configured cadence, each is published outside
 * the database as it is signed (a log the gate only appends to, the webhook outbox), and a
 * checkpoint held there catches a ledger that is shorter or forks.
 */
const { privateKey: KEY, publicKey: PUBLIC } = crypto.generateKeyPairSync('ed25519');
const EVERY = 5;

let base: string;
let pristine: string;
let published: Checkpoint[];
const open: AuditLedger[] = [];
beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'gate-truncation-'));
  writeFileSync(path.join(base, 'ledger.key'), KEY.export({ format: 'pem', type: 'pkcs8' }));
  published = [];
  // 23 records, checkpoints at 5, 10, 15, 20, published to checkpoints.jsonl and the hook
  const l = await openAuditLedger(ledgerConfig('pristine.db'), {
    onCheckpoint: (c) => published.push(c),
  });
  for (let i = 0; i < 23; i++) await l.append(sampleDecision(i).decision, {});
  await l.close();
  pristine = path.join(base, 'pristine.db');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function ledgerConfig(db: string, log = 'checkpoints.jsonl') {
  const config = {
    ledger: {
      path: db,
      checkpointKey: 'ledger.key',
      checkpointEvery: { records: EVERY },
      checkpointLog: log,
    },
  };
  return normalise(config, base, 'x').ledger;
}

function tampered(sql: string): AuditLedger {
  const l = tamperedCopy(pristine, base, sql);
  open.push(l);
  return l;
}

/** Removes every record after `size` with its index rows, and the checkpoints after `kept`. */
const cut = (size: number, kept = size) =>
  [
    ...['records', 'subjects', 'rules', 'consumed'].map(
      (t) => `DELETE FROM ${t} WHERE seq > ${size}`,
    ),
    `DELETE FROM checkpoints WHERE size > ${kept}`,
  ].join('; ');

const log = () =>
  parseCheckpoints(readFileSync(path.join(base, 'checkpoints.jsonl'), 'utf8'), 'log');

describe('publishing checkpoints outside the database', () => {
  it('appends each one to the checkpoint log and hands it to the hook, in order', async () => {
    expect(published.map((c) => c.size)).toEqual([5, 10, 15, 20]);
    expect(log()).toEqual(published);
    const l = createSqliteLedger({ path: pristine });
    open.push(l);
    expect(await l.checkpoints()).toEqual(published);
  });

  it('keeps a checkpoint it could not publish and publishes it with the next one', async () => {
    const blocked = path.join(base, 'blocked.jsonl');
    mkdirSync(blocked); // a directory where the log should be: every append fails
    const l = await openAuditLedger(ledgerConfig('retry.db', 'blocked.jsonl'));
    for (let i = 0; i < 5; i++) await l.append(sampleDecision(i).decision, {});
    expect((await l.checkpoints()).map((c) => c.size)).toEqual([5]);
    rmSync(blocked, { recursive: true });
    for (let i = 5; i < 10; i++) await l.append(sampleDecision(i).decision, {});
    await l.close();
    const lines = parseCheckpoints(readFileSync(blocked, 'utf8'), 'blocked');
    expect(lines.map((c) => c.size)).toEqual([5, 10]);
  });

  it('announces each one through the webhook outbox, delivered over http', async () => {
    const received: unknown[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const outbox = createOutbox({ file: path.join(base, 'outbox.jsonl'), webhooks: [{ url }] });
      const l = await openAuditLedger(ledgerConfig('announced.db', 'announced.jsonl'), { outbox });
      for (let i = 0; i < 5; i++) await l.append(sampleDecision(i).decision, {});
      const [checkpoint] = await l.checkpoints();
      await l.close();
      for (let i = 0; i < 100 && received.length === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(received).toEqual([expect.objectContaining({ checkpoint })]);
      expect((received[0] as { text: string }).text).toMatch(/checkpoint: 5 records/);
      // what the channel received is what verify takes
      expect(parseCheckpoints(JSON.stringify(received[0]), 'message')).toEqual([checkpoint]);
    } finally {
      server.close();
    }
  });
});

describe('verify finds a truncated ledger', () => {
  it('the pristine ledger verifies against the cadence and its published log', async () => {
    const l = createSqliteLedger({ path: pristine });
    open.push(l);
    const opts = { everyRecords: EVERY, external: log(), expectSize: 23 };
    expect(await l.verify(PUBLIC, opts)).toEqual({ ok: true, records: 23, checkpoints: 4 });
  });

  it('records left after the last checkpoint row deleted: a checkpoint is missing', async () => {
    const l = tampered('DELETE FROM checkpoints WHERE size > 10');
    expect((await l.verify(PUBLIC)).ok).toBe(true); // without the cadence, nothing shows
    expect((await l.verify(PUBLIC, { everyRecords: EVERY })).firstBroken).toMatchObject({
      seq: 15,
      code: 'LEDGER_CHECKPOINT_MISSING',
      reason: expect.stringMatching(/13 records after the checkpoint at size 10/),
    });
  });

  it('a checkpoint deleted in the middle: the checkpoints skip', async () => {
    const l = tampered('DELETE FROM checkpoints WHERE size = 10');
    expect((await l.verify(PUBLIC, { everyRecords: EVERY })).firstBroken).toMatchObject({
      seq: 10,
      code: 'LEDGER_CHECKPOINT_MISSING',
      reason: expect.stringMatching(/no checkpoint between sizes 5 and 15/),
    });
  });

  it('cut back to a checkpoint: only a checkpoint held outside (or the size) tells', async () => {
    const l = tampered(cut(15));
    expect(await l.verify(PUBLIC, { everyRecords: EVERY })).toMatchObject({ ok: true });
    const held = await l.verify(PUBLIC, { everyRecords: EVERY, external: log() });
    expect(held.firstBroken).toMatchObject({ seq: 20, code: 'LEDGER_TRUNCATED' });
    expect(held.firstBroken?.reason).toMatch(/names 20 records, the ledger has 15/);
    const sized = await l.verify(PUBLIC, { expectSize: 23 });
    expect(sized.firstBroken).toMatchObject({ code: 'LEDGER_TRUNCATED' });
  });

  it('a tail rewritten below a checkpoint held outside: the ledger forks from it', async () => {
    const file = path.join(base, 'fork.db');
    copyFileSync(pristine, file);
    const db = new Database(file);
    dropTriggers(db);
    db.exec('DELETE FROM checkpoints WHERE size > 15');
    const rows = db
      .prepare('SELECT seq, body FROM records WHERE seq > 15 ORDER BY seq')
      .all() as Array<{ seq: number; body: string }>;
    let prev = (db.prepare('SELECT hash FROM records WHERE seq = 15').get() as { hash: string })
      .hash;
    for (const row of rows) {
      const body = { ...JSON.parse(row.body), prevHash: prev };
      if (row.seq === 16) body.decision.allow = !body.decision.allow;
      const hash = recordHash(body);
      db.prepare('UPDATE records SET prev_hash = ?, hash = ?, body = ? WHERE seq = ?').run(
        prev,
        hash,
        canonical(body),
        row.seq,
      );
      prev = hash;
    }
    db.close();
    const l = createSqliteLedger({ path: file });
    open.push(l);
    expect((await l.verify(PUBLIC)).ok).toBe(true);
    expect((await l.verify(PUBLIC, { external: log() })).firstBroken).toMatchObject({
      seq: 20,
      code: 'LEDGER_FORKED',
    });
  });

  it('a checkpoint held outside that the key did not sign is refused', async () => {
    const other = crypto.generateKeyPairSync('ed25519').publicKey;
    const l = createSqliteLedger({ path: pristine });
    open.push(l);
    expect((await l.verify(other, { external: log() })).firstBroken).toMatchObject({
      code: 'LEDGER_CHECKPOINT_INVALID',
    });
    expect((await l.verify(undefined, { external: log() })).firstBroken).toMatchObject({
      code: 'LEDGER_CHECKPOINT_INVALID',
      reason: expect.stringMatching(/without the ledger public key/),
    });
  });
});
