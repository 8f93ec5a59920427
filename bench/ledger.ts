/**
 * The audit ledger, side by side in one run (`make bench`, or `npx tsx bench/ledger.ts`), each
 * result as a ratio to its goal:
 *
 *   durable appends/s    one at a time; concurrent callers in one process (group commit);
 *                        several processes on one file; the JSON Lines stopgap for reference
 *                        goal >= 3,000/s
 *   query by subject     at 1,000,000 records, newest first, limit 100     goal <= 10 ms
 *   chain verification   records/s, the ledger's own (stored bytes) and the auditor's generic
 *                        verifyChain over records()                        goal >= 500,000/s
 *
 * Records are realistic (the size and shape of the gate's: ~4 KB decision, ~7 KB policy input,
 * ~5 KB stored). The 1M-record ledger is built once into .gate/bench/ (minutes; resumable) with
 * real chained records and checkpoints, in large transactions without fsync, and reused.
 * Appends are measured on the same disk, with fsync, as the gate runs them.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createJsonlLedger } from '../src/audit/jsonl.js';
import { verifyChain, type LedgerRecord } from '../src/audit/record.js';
import { createCheckpointer } from '../src/audit/checkpointer.js';
import { appendBatch, headOf } from '../src/audit/sqlite-append.js';
import { openLedgerDb } from '../src/audit/sqlite-schema.js';
import { createSqliteLedger } from '../src/audit/sqlite.js';
import { packagePath } from '../src/util/paths.js';
import { sampleDecision, sha256 } from '../test/audit/sqlite-child.js';

const run = promisify(execFile);
const DIR = packagePath('.gate', 'bench');
const BIG = path.join(DIR, 'ledger-1m.db');
const KEY_FILE = path.join(DIR, 'ledger-1m.key.pem');
const SIZE = Number(process.env.GATE_BENCH_RECORDS ?? 1_000_000);
const ARTIFACTS = Math.max(1, Math.floor(SIZE / 4)); // each subject decided ~4 times
const CHILD = packagePath('test', 'audit', 'sqlite-child.ts');

const GOALS = { appendsPerSecond: 3000, queryMs: 10, verifyPerSecond: 500_000 };
const lines: string[] = [];
const report = (s: string) => {
  lines.push(s);
  console.log(s);
};
const perSecond = (n: number, ms: number) => (n * 1000) / ms;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (value: number, goal: number, higherIsBetter: boolean) => {
  const r = higherIsBetter ? value / goal : goal / value;
  return `${fmt(r, 2)}x goal (${r >= 1 ? 'met' : 'not met'})`;
};

function key(): crypto.KeyObject {
  if (!existsSync(KEY_FILE)) {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    writeFileSync(KEY_FILE, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  }
  return crypto.createPrivateKey(readFileSync(KEY_FILE));
}

/** Builds (or finishes building) the big ledger: real chained records, checkpoints every 100. */
function buildBig(privateKey: crypto.KeyObject): void {
  const db = openLedgerDb(BIG, 5000);
  db.pragma('synchronous = OFF');
  const checkpointer = createCheckpointer({ key: privateKey, everyRecords: 100 });
  let size = headOf(db).size;
  if (size >= SIZE) {
    db.close();
    return;
  }
  console.log(`building ${fmt(SIZE)} records into ${BIG} (once; resumes from ${fmt(size)})`);
  const start = performance.now();
  const from = size;
  while (size < SIZE) {
    const n = Math.min(5000, SIZE - size);
    const batch = Array.from({ length: n }, (_, k) =>
      sampleDecision(size + k, { artifact: (size + k) % ARTIFACTS }),
    );
    const failed = appendBatch(db, batch, checkpointer);
    if (!failed) throw new Error(`${BIG} is locked by another process`);
    if (failed.size) throw [...failed.values()][0];
    size += n;
    if (size % 50_000 === 0) {
      const rate = perSecond(size - from, performance.now() - start);
      console.log(`  ${fmt(size)} records, ${fmt(rate)}/s`);
    }
  }
  db.close();
}

async function appendsOneAtATime(file: string, n: number): Promise<number> {
  const samples = Array.from({ length: n }, (_, i) => sampleDecision(i));
  const ledger = createSqliteLedger({ path: file });
  await ledger.head();
  const start = performance.now();
  for (const s of samples) await ledger.append(s.decision, s.input);
  const ms = performance.now() - start;
  await ledger.close();
  return perSecond(n, ms);
}

async function appendsConcurrent(file: string, n: number, inflight: number): Promise<number> {
  const samples = Array.from({ length: n }, (_, i) => sampleDecision(i));
  const ledger = createSqliteLedger({ path: file });
  await ledger.head();
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < n) {
        const s = samples[next++]!;
        await ledger.append(s.decision, s.input);
      }
    }),
  );
  const ms = performance.now() - start;
  await ledger.close();
  return perSecond(n, ms);
}

async function appendsProcesses(file: string, procs: number, each: number, inflight: number) {
  const created = createSqliteLedger({ path: file });
  await created.head();
  await created.close();
  const outs = await Promise.all(
    Array.from({ length: procs }, (_, p) =>
      run(
        process.execPath,
        ['--import', 'tsx', CHILD, 'append', file, String(each), `p${p}`, String(inflight)],
        { cwd: packagePath() },
      ),
    ),
  );
  const spans = outs.map((o) => o.stdout.trim().split(' ').slice(1).map(Number));
  const start = Math.min(...spans.map((s) => s[0]!));
  const end = Math.max(...spans.map((s) => s[1]!));
  const check = createSqliteLedger({ path: file });
  const verified = await check.verify();
  await check.close();
  if (!verified.ok || verified.records !== procs * each) throw new Error('chain broken');
  return perSecond(procs * each, end - start);
}

async function appendsJsonl(file: string, n: number): Promise<number> {
  const samples = Array.from({ length: n }, (_, i) => sampleDecision(i));
  const ledger = createJsonlLedger(file);
  const start = performance.now();
  for (const s of samples) await ledger.append(s.decision, s.input);
  return perSecond(n, performance.now() - start);
}

async function main() {
  mkdirSync(DIR, { recursive: true });
  const privateKey = key();
  const publicKey = crypto.createPublicKey(privateKey);
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  report(`\naudit ledger (SQLite, WAL, synchronous=FULL), ${os.cpus().length} x ${cpu}`);

  // durable appends, on a scratch file beside the big ledger (the same disk)
  const scratch = path.join(DIR, 'appends');
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const one = await appendsOneAtATime(path.join(scratch, 'one.db'), 2000);
  const group = await appendsConcurrent(path.join(scratch, 'group.db'), 8000, 64);
  const procs = await appendsProcesses(path.join(scratch, 'procs.db'), 2, 2000, 1);
  const procsGroup = await appendsProcesses(path.join(scratch, 'procs-group.db'), 2, 4000, 32);
  const jsonl = await appendsJsonl(path.join(scratch, 'ledger.jsonl'), 2000);
  rmSync(scratch, { recursive: true, force: true });
  report('durable appends (each acknowledged only after fsync), goal >= 3,000/s:');
  report(
    `  one at a time, 1 process            ${fmt(one).padStart(8)}/s  ${ratio(one, GOALS.appendsPerSecond, true)}`,
  );
  report(
    `  64 concurrent callers, 1 process    ${fmt(group).padStart(8)}/s  ${ratio(group, GOALS.appendsPerSecond, true)}`,
  );
  report(
    `  2 processes, one at a time each     ${fmt(procs).padStart(8)}/s  ${ratio(procs, GOALS.appendsPerSecond, true)}`,
  );
  report(
    `  2 processes, 32 concurrent each     ${fmt(procsGroup).padStart(8)}/s  ${ratio(procsGroup, GOALS.appendsPerSecond, true)}`,
  );
  report(`  (JSON Lines stopgap, one at a time  ${fmt(jsonl).padStart(8)}/s, no chain, no index)`);

  // the big ledger
  buildBig(privateKey);
  const ledger = createSqliteLedger({ path: BIG });
  const head = await ledger.head();

  // query by subject: random subjects, each ~4 records spread over the whole ledger
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const subject = () => `sha256:${sha256(`artifact ${rnd(ARTIFACTS)}`)}`;
  for (let i = 0; i < 200; i++) await ledger.query({ subject: subject() }); // warm up
  const times: number[] = [];
  let found = 0;
  for (let i = 0; i < 2000; i++) {
    const s = subject();
    const t = performance.now();
    found += (await ledger.query({ subject: s })).length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const p99 = times[Math.floor(times.length * 0.99)]!;
  const env = performance.now();
  const newest = await ledger.query({ environment: 'production', outcome: 'deny', limit: 100 });
  const envMs = performance.now() - env;
  report(
    `query by subject at ${fmt(head.size)} records (${fmt(found / times.length, 1)} records each), goal <= 10 ms:`,
  );
  report(
    `  mean ${fmt(mean, 3)} ms, p99 ${fmt(p99, 3)} ms             ${ratio(p99, GOALS.queryMs, false)} (p99)`,
  );
  report(`  (environment + outcome, newest 100: ${fmt(envMs, 2)} ms, ${newest.length} records)`);

  // verification
  let t = performance.now();
  const own = await ledger.verify(publicKey);
  const ownRate = perSecond(own.records, performance.now() - t);
  if (!own.ok) throw new Error(`the bench ledger does not verify: ${JSON.stringify(own)}`);
  const sample = Math.min(head.size, 200_000);
  async function* first(n: number): AsyncIterable<LedgerRecord> {
    let i = 0;
    for await (const r of ledger.records()) {
      if (i++ >= n) return;
      yield r;
    }
  }
  t = performance.now();
  const generic = await verifyChain(first(sample), []);
  const genericRate = perSecond(generic.records, performance.now() - t);
  report(`chain verification, goal >= 500,000 records/s:`);
  report(
    `  ledger.verify (stored bytes), ${fmt(own.records)} records, ${fmt(own.checkpoints)} checkpoints  ${fmt(ownRate).padStart(8)}/s  ${ratio(ownRate, GOALS.verifyPerSecond, true)}`,
  );
  report(
    `  verifyChain(records()), first ${fmt(generic.records)}          ${fmt(genericRate).padStart(8)}/s  ${ratio(genericRate, GOALS.verifyPerSecond, true)}`,
  );
  await ledger.close();
  writeFileSync(path.join(DIR, 'ledger-results.txt'), `${lines.join('\n')}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
