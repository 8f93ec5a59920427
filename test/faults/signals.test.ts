import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportFault } from './report.js';
import {
  ANSWER_MARGIN_MS,
  auditVerify,
  DEADLINE_MS,
  decide,
  hex,
  killChildren,
  readLedger,
  sleep,
  startFaulty,
  startFixture,
  startServe,
  writeConfig,
  type Answer,
  type Faulty,
  type Fixture,
} from './support.js';

/**
 * A real `gate serve` stopped with requests in flight. SIGTERM: the requests in flight finish
 * (or fail closed at their deadline) and are recorded before the process exits 0; none is
 * allowed without its record. kill -9: whatever was answered is in the ledger, and the chain
 * verifies; a gate started again on the same ledger goes on with it.
 */
const APP = hex('faults: an app with provenance on disk, for signals');

let fx: Fixture;
let evidence: string;
const faulty: Faulty[] = [];

beforeAll(async () => {
  fx = await startFixture();
  evidence = path.join(fx.dir, 'evidence');
  mkdirSync(evidence);
  writeFileSync(path.join(evidence, 'app.sigstore.json'), JSON.stringify(await fx.provenance(APP)));
});
afterAll(async () => {
  killChildren();
  await Promise.all(faulty.map((f) => f.close()));
  await fx?.close();
});

async function store(mode: 'slow' | 'hang'): Promise<Faulty> {
  const s = await startFaulty(mode);
  faulty.push(s);
  return s;
}

async function until(what: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('SIGTERM with requests in flight', () => {
  it('a slow store: every request in flight is finished, answered and recorded; the server exits 0', async () => {
    const slow = await store('slow');
    const config = writeConfig(fx, fx.dir, 'term-slow.yaml', {
      sources: { bundles: [evidence], store: { url: slow.url } },
    });
    const serving = await startServe(config);
    const inFlight = Array.from({ length: 8 }, () => decide(serving.url, APP));
    // every decision is waiting on the store: in flight inside the gate
    await until(() => slow.hits === 8, 5000);
    const signalled = performance.now();
    serving.child.kill('SIGTERM');
    await sleep(50);
    // a request after SIGTERM is not taken (the port is closed): never an answer without a record
    const late = await decide(serving.url, APP, 3000);
    const answers = await Promise.all(inFlight);
    const exit = await serving.exited;
    const stopMs = performance.now() - signalled;
    reportFault(
      'serve: SIGTERM with 8 requests in flight (slow store)',
      `exit ${exit.code}`,
      undefined,
      stopMs,
    );
    expect(exit).toEqual({ code: 0, signal: null });
    expect(late).toBeUndefined();
    for (const a of answers) {
      expect(a, 'a request in flight at SIGTERM is answered').toBeDefined();
      expect([a!.status, a!.body.outcome]).toEqual([200, 'allow']);
    }
    expect(stopMs).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
    const recorded = await readLedger(config);
    expect(recorded.ok).toBe(true);
    expect(new Set(recorded.ids)).toEqual(new Set(answers.map((a) => a!.body.id)));
  }, 30_000);

  it('a hanging store: the requests in flight fail closed at their deadline (503), recorded; the server exits 0', async () => {
    const hang = await store('hang');
    const config = writeConfig(fx, fx.dir, 'term-hang.yaml', {
      sources: { bundles: [evidence], store: { url: hang.url } },
    });
    const serving = await startServe(config);
    const started = performance.now();
    const inFlight = Array.from({ length: 4 }, () => decide(serving.url, APP));
    await until(() => hang.hits === 4, 5000);
    serving.child.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    const exit = await serving.exited;
    const ms = performance.now() - started;
    reportFault(
      'serve: SIGTERM with 4 requests in flight (hanging store)',
      `exit ${exit.code}`,
      answers[0]?.body.error?.code,
      ms,
    );
    expect(exit).toEqual({ code: 0, signal: null });
    for (const a of answers) {
      expect(a).toBeDefined();
      expect([a!.status, a!.body.outcome, a!.body.allow, a!.body.error?.code]).toEqual([
        503,
        'error',
        false,
        'SOURCE_TIMEOUT',
      ]);
      expect(a!.ms).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
    }
    expect(ms).toBeLessThan(DEADLINE_MS + 2 * ANSWER_MARGIN_MS);
    const recorded = await readLedger(config);
    expect(recorded.ok).toBe(true);
    expect(new Set(recorded.ids)).toEqual(new Set(answers.map((a) => a!.body.id)));
  }, 30_000);
});

describe('kill -9 with requests in flight', () => {
  it('every answered decision is in the ledger, the chain verifies, and a new gate goes on with it', async () => {
    const config = writeConfig(fx, fx.dir, 'kill.yaml', { sources: { bundles: [evidence] } });
    const killedAfter = [40, 25];
    const answered: Answer[] = [];
    let cut = 0;
    for (const [round, after] of killedAfter.entries()) {
      const serving = await startServe(config);
      const roundStarted = performance.now();
      let stop = false;
      const mine: Answer[] = [];
      // six clients asking one after another, as fast as the gate answers
      const clients = Array.from({ length: 6 }, async () => {
        while (!stop) {
          const a = await decide(serving.url, APP, 10_000);
          if (!a) {
            cut++;
            return;
          }
          mine.push(a);
          if (mine.length >= after && serving.child.exitCode === null) {
            stop = true;
            serving.child.kill('SIGKILL');
          }
        }
      });
      await Promise.all(clients);
      expect(await serving.exited).toEqual({ code: null, signal: 'SIGKILL' });
      reportFault(
        `serve: kill -9 round ${round + 1} after ${mine.length} answers`,
        'killed',
        undefined,
        performance.now() - roundStarted,
      );
      for (const a of mine) expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      answered.push(...mine);
      const recorded = await readLedger(config);
      expect(recorded.ok).toBe(true);
      const ids = new Set(recorded.ids);
      for (const a of answered)
        expect(ids.has(a.body.id), `answered ${a.body.id} is recorded`).toBe(true);
      // beyond those answered, only decisions in flight at the kill: at most one per client
      expect(recorded.ids.length - answered.length).toBeLessThanOrEqual(6 * (round + 1));
    }
    expect(cut).toBeGreaterThan(0);
    const verify = await auditVerify(config);
    expect([verify.code, verify.stderr]).toEqual([0, '']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
    // a gate started again on the killed one's ledger records on the same chain
    const again = await startServe(config);
    try {
      const a = await decide(again.url, APP);
      expect([a?.status, a?.body.outcome]).toEqual([200, 'allow']);
      answered.push(a!);
    } finally {
      again.child.kill('SIGTERM');
    }
    expect((await again.exited).code).toBe(0);
    const recorded = await readLedger(config);
    expect(recorded.ok).toBe(true);
    expect(recorded.ids.at(-1)).toBe(answered.at(-1)!.body.id);
  }, 60_000);
});
