import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { reportFault } from './report.js';
import {
  ANSWER_MARGIN_MS,
  check,
  DEADLINE_MS,
  decide,
  hex,
  killChildren,
  readLedger,
  START_MARGIN_MS,
  startFixture,
  startServe,
  writeConfig,
  type Answer,
  type Fixture,
} from './support.js';

/**
 * The ledger goes wrong under a real `gate check` and a real `gate serve`: the SQLite file
 * locked by another connection, the disk it is on full (a 512 KiB tmpfs), PostgreSQL stopped and
 * started again. The subject has provenance in a bundle folder, so the policy allows it: while
 * the ledger cannot be written every decision is "could not decide" (LEDGER_UNAVAILABLE, exit
 * 2, HTTP 503), never an answer without a record; afterwards the ledger holds exactly the
 * decisions that were acknowledged, and the chain verifies.
 */
const APP = hex('faults: an app with provenance on disk');
/** the SQLite ledger's wait for another process's write lock (createSqliteLedger's default) */
/** how long past its deadline a decision's record may wait for the ledger (src/gate.ts) */
const RECORD_GRACE_MS = Math.min(1000, DEADLINE_MS / 4);
/** how long the PostgreSQL ledger waits for the server to answer a query (src/audit/postgres.ts) */
const PG_QUERY_TIMEOUT_MS = 10_000;

let fx: Fixture;
let evidence: string;

beforeAll(async () => {
  fx = await startFixture();
  evidence = path.join(fx.dir, 'evidence');
  mkdirSync(evidence);
  writeFileSync(path.join(evidence, 'app.sigstore.json'), JSON.stringify(await fx.provenance(APP)));
});
afterAll(async () => {
  killChildren();
  await fx?.close();
});

const bundles = () => ({ sources: { bundles: [evidence] } });

/** Acknowledged decisions (answered, and not "could not record") must be the recorded ones. */
async function expectAcknowledgedRecorded(
  config: string,
  answered: Answer[],
  env: NodeJS.ProcessEnv = {},
) {
  const recorded = await readLedger(config, env);
  expect(recorded.ok).toBe(true);
  const acknowledged = answered.filter((a) => a.body.error?.code !== 'LEDGER_UNAVAILABLE');
  expect(new Set(recorded.ids)).toEqual(new Set(acknowledged.map((a) => a.body.id)));
  expect(recorded.ids).toHaveLength(acknowledged.length);
  for (const a of answered.filter((x) => x.body.error?.code === 'LEDGER_UNAVAILABLE'))
    expect(recorded.ids).not.toContain(a.body.id);
}

describe('a SQLite ledger locked by another connection', () => {
  it('gate check waits for the lock until just past its deadline, then could not decide, unrecorded; after the lock is released it records again', async () => {
    const config = writeConfig(fx, fx.dir, 'locked.yaml', bundles());
    const first = await check(config, APP);
    expect([first.code, first.decision?.outcome]).toEqual([0, 'allow']);
    const holder = new Database(path.join(fx.dir, 'locked.db'));
    let run;
    try {
      holder.exec('BEGIN IMMEDIATE');
      run = await check(config, APP);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    reportFault(
      'check: sqlite ledger locked',
      run.decision?.outcome ?? `exit ${run.code}`,
      run.decision?.error?.code,
      run.ms,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    expect(run.decision).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'LEDGER_UNAVAILABLE' },
    });
    expect(run.decision!.error!.message).toMatch(
      /locked \(another process held the write lock for \d+ ms, past the decision's deadline\)/,
    );
    expect(run.decision!.error!.message).toContain('locked.db');
    // the wait ends a little past the decision's deadline (not the ledger's own 5 s busy
    // timeout): a caller such as Kubernetes has not given up yet
    expect(run.decideMs!).toBeGreaterThanOrEqual(DEADLINE_MS);
    expect(run.decideMs!).toBeLessThan(DEADLINE_MS + RECORD_GRACE_MS + ANSWER_MARGIN_MS);
    const after = await check(config, APP);
    expect([after.code, after.decision?.outcome]).toEqual([0, 'allow']);
    expect(await readLedger(config)).toMatchObject({
      ids: [first.decision!.id, after.decision!.id],
      ok: true,
    });
  }, 30_000);
});

/** A 512 KiB tmpfs (we are root); unmounted in afterAll. */
function mountSmallDisk(at: string): void {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', at]);
}

/** Writes zeros until the file system refuses: ENOSPC. Returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(4096);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

describe('the disk under a SQLite ledger full', () => {
  let disk: string;
  let mounted = false;
  beforeAll(() => {
    disk = path.join(fx.dir, 'disk');
    mountSmallDisk(disk);
    mounted = true;
  });
  afterAll(() => {
    killChildren();
    if (mounted) execFileSync('umount', ['-l', disk]);
  });

  it('gate check on a full disk could not decide: nothing of the record can be written', async () => {
    const filler = path.join(disk, 'filler');
    expect(fill(filler)).toBeGreaterThan(0);
    try {
      const config = writeConfig(fx, fx.dir, 'full-new.yaml', {
        ...bundles(),
        ledger: { path: path.join(disk, 'new', 'ledger.db') },
      });
      const run = await check(config, APP);
      reportFault(
        'check: disk full, new ledger',
        run.decision?.outcome ?? `exit ${run.code}`,
        run.decision?.error?.code,
        run.ms,
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(2);
      // the first write is the policy the record names, stored beside the ledger
      expect(run.decision).toMatchObject({
        outcome: 'error',
        allow: false,
        error: { code: 'LEDGER_UNAVAILABLE' },
      });
      expect(run.decision!.error!.message).toContain(path.join(disk, 'new'));
      expect(run.ms).toBeLessThan(DEADLINE_MS + START_MARGIN_MS);
    } finally {
      rmSync(filler, { force: true });
    }
  });

  it('gate serve: while the disk is full decisions fail closed (503), none is answered without its record; freed, it records again', async () => {
    const config = writeConfig(fx, fx.dir, 'full-serve.yaml', {
      ...bundles(),
      ledger: { path: path.join(disk, 'serve', 'ledger.db') },
    });
    const serving = await startServe(config);
    const answered: Answer[] = [];
    const ask = async () => {
      const a = await decide(serving.url, APP);
      expect(a, 'every request is answered').toBeDefined();
      answered.push(a!);
      return a!;
    };
    let failed: Answer | undefined;
    const filler = path.join(disk, 'filler');
    try {
      for (let i = 0; i < 3; i++) expect((await ask()).status).toBe(200);
      fill(filler);
      // the write-ahead log may still have room for a few records: ask until the disk says no
      for (let i = 0; i < 60 && !failed; i++) {
        const a = await ask();
        if (a.status !== 200) failed = a;
        else expect(a.body.outcome).toBe('allow');
      }
      expect(failed, 'a decision the full disk could not record').toBeDefined();
      reportFault('serve: disk full', failed!.body.outcome, failed!.body.error?.code, failed!.ms);
      expect([failed!.status, failed!.body.outcome, failed!.body.allow]).toEqual([
        503,
        'error',
        false,
      ]);
      expect(failed!.body.error).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      expect(failed!.body.error!.message).toMatch(/full/);
      expect(failed!.ms).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
      // still full: still no answer without a record
      const again = await ask();
      expect([again.status, again.body.error?.code]).toEqual([503, 'LEDGER_UNAVAILABLE']);
      rmSync(filler);
      for (let i = 0; i < 3; i++) {
        const a = await ask();
        expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      }
    } finally {
      rmSync(filler, { force: true });
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exited).code).toBe(0);
    await expectAcknowledgedRecorded(config, answered);
  }, 60_000);
});

/** The PostgreSQL server's processes: the postmaster (postmaster.pid in its data folder) and its children. */
async function clusterPids(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let data: string;
  try {
    data = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!
      .data_directory;
  } finally {
    await client.end();
  }
  const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
  return [postmaster, ...children];
}

describe('PostgreSQL stopped and started again, or hung, under gate serve', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgresServer();
  });
  afterAll(async () => {
    killChildren();
    await server?.close();
  });

  it('decisions fail closed (503 LEDGER_UNAVAILABLE) while it is down and are recorded again once it is back', async () => {
    const env = { GATE_LEDGER_URL: await server.createDatabase() };
    const config = writeConfig(fx, fx.dir, 'postgres.yaml', {
      ...bundles(),
      ledger: { backend: 'postgres' },
    });
    const serving = await startServe(config, env);
    const answered: Answer[] = [];
    const batch = async (n: number) => {
      const answers = await Promise.all(Array.from({ length: n }, () => decide(serving.url, APP)));
      for (const a of answers) expect(a, 'every request is answered').toBeDefined();
      answered.push(...answers.map((a) => a!));
      return answers.map((a) => a!);
    };
    try {
      for (const a of await batch(3)) expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      await server.stop();
      let down: Answer[];
      try {
        down = await batch(3);
      } finally {
        await server.start();
      }
      for (const a of down) {
        reportFault('serve: postgresql stopped', a.body.outcome, a.body.error?.code, a.ms);
        expect([a.status, a.body.outcome, a.body.allow]).toEqual([503, 'error', false]);
        expect(a.body.error).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
        expect(a.body.error!.message).toMatch(/^cannot record the decision in postgresql: \S/);
        expect(a.ms).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
      }
      const back = await batch(3);
      for (const a of back) {
        reportFault('serve: postgresql restarted', a.body.outcome, a.body.error?.code, a.ms);
        expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      }
    } finally {
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exited).code).toBe(0);
    await expectAcknowledgedRecorded(config, answered, env);
  }, 90_000);

  it('hung (its processes stopped, connections open): a decision fails closed (503 LEDGER_UNAVAILABLE) within the ledger query timeout instead of hanging', async () => {
    const url = await server.createDatabase();
    const env = { GATE_LEDGER_URL: url };
    const config = writeConfig(fx, fx.dir, 'postgres-hung.yaml', {
      ...bundles(),
      ledger: { backend: 'postgres' },
    });
    const serving = await startServe(config, env);
    const answered: Answer[] = [];
    const ask = async () => {
      const a = await decide(serving.url, APP, PG_QUERY_TIMEOUT_MS + 15_000);
      expect(a, 'every request is answered').toBeDefined();
      answered.push(a!);
      return a!;
    };
    const cluster = await clusterPids(url);
    try {
      expect([(await ask()).status]).toEqual([200]);
      // the server and every backend stopped: connections stay open, nothing answers
      for (const pid of cluster) process.kill(pid, 'SIGSTOP');
      let hung: Answer;
      try {
        hung = await ask();
      } finally {
        for (const pid of cluster) process.kill(pid, 'SIGCONT');
      }
      reportFault('serve: postgresql hung', hung.body.outcome, hung.body.error?.code, hung.ms);
      expect([hung.status, hung.body.outcome, hung.body.allow]).toEqual([503, 'error', false]);
      expect(hung.body.error).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      expect(hung.body.error!.message).toMatch(/^cannot record the decision in postgresql: \S/);
      expect(hung.ms).toBeLessThan(PG_QUERY_TIMEOUT_MS + DEADLINE_MS + ANSWER_MARGIN_MS);
      const back = await ask();
      expect([back.status, back.body.outcome]).toEqual([200, 'allow']);
    } finally {
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exited).code).toBe(0);
    // a record the hung server committed after the gate gave up would be recorded, unacknowledged
    const recorded = await readLedger(config, env);
    expect(recorded.ok).toBe(true);
    for (const a of answered.filter((x) => x.status === 200))
      expect(recorded.ids).toContain(a.body.id);
  }, 60_000);
});
