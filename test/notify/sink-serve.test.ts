import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.js';
import { otlpProblems, otlpRecords, SinkReceiver } from './sink-receiver.js';

/**
 * The decision stream as a user runs it: a real `gate serve` (a child process) with an http-json
 * sink and an OTLP/HTTP sink on 127.0.0.1, decisions posted over HTTP, the http-json sink down
 * through a crash (SIGKILL) and a restart of the gate, then up: every decision arrives.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');

let dir: string;
let http: SinkReceiver;
let otel: SinkReceiver;
let config: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-sink-serve-'));
  http = await SinkReceiver.down();
  otel = await SinkReceiver.up();
  config = path.join(dir, 'gate.yaml');
  writeFileSync(
    config,
    [
      'deadlineMs: 2000',
      'ledger:',
      `  path: ${path.join(dir, 'ledger.db')}`,
      'notify:',
      `  outbox: ${path.join(dir, 'outbox.jsonl')}`,
      'sinks:',
      '  - name: events',
      '    type: http-json',
      `    url: ${http.url('/events')}`,
      '    tokenEnv: SINK_TOKEN',
      '  - name: collector',
      '    type: otlp-http',
      `    url: ${otel.url()}`,
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await http.stop();
  await otel.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(): Promise<{ url: string; child: ChildProcess; exited: Promise<unknown> }> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config, '--port', '0'];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, SINK_TOKEN: 'sink-secret' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearInterval(poll);
        resolve(Number(m[1]));
      }
    }, 25);
    void exited.then(() => {
      clearInterval(poll);
      reject(new Error(`gate serve exited: ${stderr}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child, exited };
}

async function decide(url: string, seed: string): Promise<{ id: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subjects: [`sha256:${hex(seed)}`], environment: 'dev' }),
  });
  const body = (await res.json()) as { id: string; outcome: string };
  expect([res.status, body.outcome]).toEqual([200, 'deny']);
  return { id: body.id, ms: performance.now() - started };
}

async function until(what: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One series of GET /metrics, e.g. metric(url, 'sink_events_pending', 'events'). */
async function metric(url: string, name: string, sink: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="${sink}"} `));
  if (!line) throw new Error(`no ${name} for ${sink} in /metrics`);
  return Number(line.split(' ')[1]);
}

const ids = (bodies: Array<{ id: string }>) => bodies.map((b) => b.id).sort();

describe('gate serve streaming decisions to sinks', () => {
  it('a sink down through a crash and a restart of the gate receives every decision once it is up', async () => {
    const first = await serve();
    const made: string[] = [];
    for (let i = 0; i < 30; i++) made.push((await decide(first.url, `a${i}`)).id);
    // the collector is up: it has them all, in valid OTLP JSON, each with its decision id
    await until(() => otlpRecords(otel.accepted()).length >= 30, 15_000);
    for (const s of otel.seen) expect(otlpProblems(s.body)).toEqual([]);
    expect(
      otlpRecords(otel.accepted())
        .map((r) => r['gate.decision.id'])
        .sort(),
    ).toEqual([...made].sort());
    expect(http.seen).toEqual([]);

    // the gate is killed (no shutdown, no last flush); decisions recorded just before are in
    // the ledger, some perhaps not yet in the outbox
    for (let i = 30; i < 40; i++) made.push((await decide(first.url, `a${i}`)).id);
    first.child.kill('SIGKILL');
    await first.exited;
    // Those last ten as if the kill had come between their record and the outbox's write: their
    // lines are taken out of the outbox; the ledger still holds them.
    const outbox = path.join(dir, 'outbox.sinks.events.jsonl'); // the events sink's stream
    const lost = new Set(made.slice(30));
    const lines = readFileSync(outbox, 'utf8').split('\n');
    const kept = lines.filter((l) => !(l.startsWith('{"t":"d"') && lost.has(JSON.parse(l).e.id)));
    writeFileSync(outbox, kept.join('\n'));
    expect(readFileSync(outbox, 'utf8')).not.toContain(made[39]);

    const second = await serve();
    try {
      for (let i = 40; i < 45; i++) made.push((await decide(second.url, `a${i}`)).id);
      // /metrics shows the sink that is down: what it has not taken, and that it fails
      await until(async () => (await metric(second.url, 'sink_failing', 'events')) === 1, 15_000);
      expect(await metric(second.url, 'sink_events_pending', 'events')).toBeGreaterThanOrEqual(45);
      expect(await metric(second.url, 'sink_failing', 'collector')).toBe(0);
      await http.start('up');
      await until(() => http.accepted().length >= 45, 30_000);
      // every decision, none lost, none twice
      expect(ids(http.accepted())).toEqual([...made].sort());
      expect(http.seen.every((s) => s.headers.authorization === 'Bearer sink-secret')).toBe(true);
      expect(http.accepted()[0]).toMatchObject({ environment: 'dev', outcome: 'deny' });
      await until(() => otlpRecords(otel.accepted()).length >= 45, 15_000);
      const collected = otlpRecords(otel.accepted()).map((r) => r['gate.decision.id'] as string);
      expect([...new Set(collected)].sort()).toEqual([...made].sort());
      await until(
        async () => (await metric(second.url, 'sink_events_pending', 'events')) === 0,
        15_000,
      );
      expect(await metric(second.url, 'sink_failing', 'events')).toBe(0);
      // the sink was down all through the first gate: this one delivered all 45
      expect(await metric(second.url, 'sink_events_delivered_total', 'events')).toBe(45);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 120_000);

  it("a hung sink does not slow a decision: the gate answers while the sink's requests hang", async () => {
    http.mode = 'hang';
    otel.mode = 'hang';
    const gate = await serve();
    try {
      const before = http.seen.length;
      const first = await decide(gate.url, 'hang-0');
      // the sinks have the first decision's request open and unanswered
      await new Promise((r) => setTimeout(r, 300));
      const times: number[] = [first.ms];
      for (let i = 1; i < 20; i++) times.push((await decide(gate.url, `hang-${i}`)).ms);
      // a hung sink is cut off after 5 s per batch; every decision here took far less
      expect(Math.max(...times)).toBeLessThan(1000);
      // both sinks were holding requests open, unanswered, while those decisions were made
      expect(http.hanging).toBeGreaterThan(0);
      expect(otel.hanging).toBeGreaterThan(0);
      expect(http.seen.length).toBe(before);
    } finally {
      gate.child.kill('SIGTERM');
      await gate.exited;
      http.mode = 'up';
      otel.mode = 'up';
    }
  }, 60_000);

  it('gate check streams its decision before it exits; one the sink missed goes with the next', async () => {
    const check = (seed: string) =>
      cli(['check', '--config', config, '--subject', `sha256:${hex(seed)}`, '--env', 'dev'], dir);
    process.env.SINK_TOKEN = 'sink-secret';
    try {
      await http.stop();
      const before = http.seen.length;
      const missed = await check('ci-0');
      expect(missed.code).toBe(1);
      await http.start('up');
      const next = await check('ci-1');
      expect(next.code).toBe(1);
      const got = http.seen.slice(before).map((r) => r.body.subjects[0].digest);
      expect(got).toEqual(
        expect.arrayContaining([`sha256:${hex('ci-0')}`, `sha256:${hex('ci-1')}`]),
      );
      // what the hung sink never answered (the test before) is held, and goes now too
      const hung = [...Array(20).keys()].map((i) => `sha256:${hex(`hang-${i}`)}`);
      expect(got).toEqual(expect.arrayContaining(hung));
      expect(new Set(got).size).toBe(got.length);
    } finally {
      delete process.env.SINK_TOKEN;
    }
  }, 60_000);
});
