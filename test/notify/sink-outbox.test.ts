import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLedger } from '../../src/audit/open.js';
import type { Decision } from '../../src/decision.js';
import {
  createSinkOutbox,
  sinkFile,
  type SinkOutboxOptions,
} from '../../src/notify/sink-outbox.js';
import type { SinkConfig } from '../../src/notify/sinks.js';
import { otlpProblems, otlpRecords, SinkReceiver } from './sink-receiver.js';

function decision(n: number, over: Partial<Decision> = {}): Decision {
  return {
    id: `dec-${String(n).padStart(4, '0')}`,
    time: new Date(Date.UTC(2026, 0, 2, 3, 4, 5) + n).toISOString(),
    gateVersion: '0.0.0',
    environment: 'production',
    subjects: [{ name: 'app.tgz', digest: { sha256: 'a'.repeat(64) } }],
    mode: 'enforce',
    outcome: 'deny',
    allow: false,
    violations: [
      { id: 'provenance.required', message: 'no provenance', remediation: 'x', attestations: [] },
    ],
    warnings: [],
    rules: ['provenance.required'],
    evidence: [],
    sourceFailures: [],
    digests: { trustRoot: 'sha256:' + 'b'.repeat(64), config: 'sha256:' + 'c'.repeat(64) },
    ...over,
  };
}

let dir: string;
let receivers: SinkReceiver[];
const file = () => path.join(dir, 'outbox.sinks.jsonl');

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-sinks-'));
  receivers = [];
});
afterEach(async () => {
  for (const r of receivers) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function receiver(up = true): Promise<SinkReceiver> {
  const r = up ? await SinkReceiver.up() : await SinkReceiver.down();
  receivers.push(r);
  return r;
}

/** An outbox over the test's file; making another over the same file is a restart. */
function outbox(sinks: SinkConfig[], opts: Partial<SinkOutboxOptions> = {}) {
  return createSinkOutbox({
    file: file(),
    sinks,
    flushMs: 5,
    backoffMs: 100,
    maxBackoffMs: 200,
    timeoutMs: 1000,
    ...opts,
  });
}

const httpJson = (r: SinkReceiver, extra: Partial<SinkConfig> = {}): SinkConfig => ({
  name: 'http',
  type: 'http-json',
  url: r.url('/events'),
  headers: {},
  ...extra,
});

async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('what each sink receives', () => {
  it('http-json: one JSON object per decision, with the configured headers and its id', async () => {
    const r = await receiver();
    const box = outbox([
      httpJson(r, { headers: { authorization: 'Bearer hec-token', 'x-scope': 'gate' } }),
    ]);
    box.enqueue(decision(1));
    box.enqueue(
      decision(2, {
        outcome: 'override',
        allow: true,
        override: {
          requestId: 'bg-1',
          requester: 'alice@example.com',
          justification: 'hotfix',
          ticket: 'INC-1',
          expiresAt: '2026-01-02T04:00:00Z',
          signers: ['bob@example.com'],
          overridden: ['provenance.required'],
        },
      }),
    );
    await until(() => r.accepted().length === 2);
    await box.close();
    expect(r.seen.map((s) => s.headers.authorization)).toEqual([
      'Bearer hec-token',
      'Bearer hec-token',
    ]);
    expect(r.seen[0]!.headers['x-scope']).toBe('gate');
    expect(r.seen[0]!.headers['content-type']).toBe('application/json');
    const [deny, override] = r.accepted().sort((a, b) => a.id.localeCompare(b.id));
    expect(deny).toEqual({
      id: 'dec-0001',
      time: '2026-01-02T03:04:05.001Z',
      gateVersion: '0.0.0',
      environment: 'production',
      outcome: 'deny',
      allow: false,
      mode: 'enforce',
      subjects: [{ digest: `sha256:${'a'.repeat(64)}`, name: 'app.tgz' }],
      violations: [{ id: 'provenance.required', message: 'no provenance' }],
      warnings: [],
      rules: ['provenance.required'],
      digests: { trustRoot: 'sha256:' + 'b'.repeat(64), config: 'sha256:' + 'c'.repeat(64) },
    });
    expect(override.override).toMatchObject({ requestId: 'bg-1', requester: 'alice@example.com' });
    // the token is configuration: never in the persisted outbox
    const written = readFileSync(sinkFile(file(), 'http'), 'utf8');
    expect(written).toContain('"id":"dec-0002"');
    expect(written).not.toContain('hec-token');
  });

  it('http-json as splunk-hec and loki: the envelopes those endpoints take', async () => {
    const r = await receiver();
    const box = outbox([
      httpJson(r, {
        name: 'splunk',
        url: r.url('/services/collector/event'),
        format: 'splunk-hec',
      }),
      httpJson(r, { name: 'loki', url: r.url('/loki/api/v1/push'), format: 'loki' }),
    ]);
    box.enqueue(decision(3));
    box.enqueue(decision(4, { outcome: 'allow', allow: true, violations: [] }));
    await until(() => r.seen.filter((s) => s.status === 200).length === 2);
    await box.close();
    // one request per sink for both decisions
    expect(r.seen.map((s) => s.path).sort()).toEqual([
      '/loki/api/v1/push',
      '/services/collector/event',
    ]);
    const by = (p: string) => r.seen.find((s) => s.path === p)!;
    // HEC's batch: event envelopes one after another in the body
    const hec = by('/services/collector/event')
      .text.split('\n')
      .map((l) => JSON.parse(l));
    expect(hec).toEqual([
      {
        time: Date.parse('2026-01-02T03:04:05.003Z') / 1000,
        source: 'gate',
        sourcetype: 'gate:decision',
        event: expect.objectContaining({ id: 'dec-0003', outcome: 'deny' }),
      },
      expect.objectContaining({ event: expect.objectContaining({ id: 'dec-0004' }) }),
    ]);
    const loki = by('/loki/api/v1/push').body;
    expect(loki.streams.map((s: any) => s.stream)).toEqual([
      { service_name: 'gate', environment: 'production', outcome: 'deny' },
      { service_name: 'gate', environment: 'production', outcome: 'allow' },
    ]);
    const [[ns, line]] = loki.streams[0].values;
    expect(ns).toBe(`${Date.parse('2026-01-02T03:04:05.003Z')}000000`);
    expect(JSON.parse(line)).toMatchObject({ id: 'dec-0003' });
    expect(JSON.parse(loki.streams[1].values[0][1])).toMatchObject({ id: 'dec-0004' });
  });

  it('otlp-http: OTLP JSON log records in batches to /v1/logs, the decision id among the attributes', async () => {
    const r = await receiver();
    const box = outbox([{ name: 'otel', type: 'otlp-http', url: r.url(), headers: {} }], {
      batch: 3,
    });
    for (let i = 0; i < 6; i++) box.enqueue(decision(i));
    // a recheck (gate recheck) that found a deployment still allowed
    const recheckOf = { id: 'dec-0000', outcome: 'allow' as const };
    box.enqueue(decision(6, { outcome: 'allow', allow: true, violations: [], recheckOf }));
    await until(() => otlpRecords(r.accepted()).length === 7);
    await box.close();
    expect(r.seen.every((s) => s.path === '/v1/logs')).toBe(true);
    // batched: 7 records in at most ceil(7 / 3) + 1 requests (the first flush may split them)
    expect(r.seen.length).toBeLessThanOrEqual(4);
    for (const s of r.seen) expect(otlpProblems(s.body)).toEqual([]);
    const records = otlpRecords(r.accepted());
    expect(records.map((x) => x['gate.decision.id']).sort()).toEqual(
      [0, 1, 2, 3, 4, 5, 6].map((n) => `dec-000${n}`),
    );
    const allow = records.find((x) => x['gate.decision.id'] === 'dec-0006')!;
    expect(allow).toMatchObject({
      'gate.outcome': 'allow',
      'gate.allow': true,
      'deployment.environment.name': 'production',
      'gate.subjects': [`sha256:${'a'.repeat(64)}`],
      'gate.recheck_of.id': 'dec-0000',
      'gate.recheck_of.outcome': 'allow',
      severityNumber: 9,
      body: `allow in production: app.tgz sha256:${'a'.repeat(64)} (recheck of dec-0000, was allow)`,
    });
    const deny = records.find((x) => x['gate.decision.id'] === 'dec-0001')!;
    expect(deny).toMatchObject({ 'gate.outcome': 'deny', severityNumber: 13 });
    expect(deny['gate.rules']).toEqual(['provenance.required']);
    const resource = r.seen[0]!.body.resourceLogs[0].resource.attributes;
    expect(resource).toEqual([{ key: 'service.name', value: { stringValue: 'gate' } }]);
    const lr = r.seen[0]!.body.resourceLogs[0].scopeLogs[0].logRecords[0];
    expect(BigInt(lr.timeUnixNano) / 1_000_000n).toBe(BigInt(Date.parse(decision(0).time)));
  });
});

describe('a sink that is down', () => {
  it('loses nothing: down, failing, restarted, then up: every decision exactly once', async () => {
    const r = await receiver(false);
    const other = await receiver();
    const sinks = [httpJson(r), httpJson(other, { name: 'other' })];
    const first = outbox(sinks);
    for (let i = 0; i < 20; i++) first.enqueue(decision(i));
    await first.flush();
    await first.deliver(); // refused
    expect(first.stats().http).toMatchObject({ pending: 20, lastError: 'unreachable' });
    // the other sink is not held back by the one that is down
    await until(() => other.accepted().length === 20);
    expect(first.stats().other).toMatchObject({ pending: 0, delivered: 20 });
    await r.start('fail');
    await new Promise((res) => setTimeout(res, 250));
    await first.deliver();
    expect(first.stats().http).toMatchObject({ pending: 20, lastError: 'http 503' });
    await first.close(100);

    // a restart: a new outbox over the same file still holds all twenty for the sink that failed
    const second = outbox(sinks);
    expect(second.stats()).toEqual({
      http: { pending: 20, delivered: 0 },
      other: { pending: 0, delivered: 0 },
    });
    for (let i = 20; i < 25; i++) second.enqueue(decision(i));
    r.mode = 'up';
    await until(() => r.accepted().length === 25);
    await second.close();
    const ids = r.accepted().map((b) => b.id);
    expect(new Set(ids).size).toBe(25);
    expect(ids.sort()).toEqual([...Array(25).keys()].map((n) => decision(n).id));
    // nothing again, not after another restart
    const third = outbox(sinks);
    await third.deliver();
    await third.close();
    expect(r.accepted()).toHaveLength(25);
    expect(
      other
        .accepted()
        .map((b) => b.id)
        .sort(),
    ).toEqual([...Array(25).keys()].map((n) => decision(n).id));
  });

  it('holds back nothing of another sink, however long it is down', async () => {
    const down = await receiver(false);
    const up = await receiver();
    const box = outbox([httpJson(down, { name: 'down' }), httpJson(up, { name: 'up' })], {
      memoryLimit: 50,
    });
    for (let i = 0; i < 300; i++) box.enqueue(decision(i));
    // far more than the down sink's stream holds in memory: the other one takes them all
    await until(() => up.accepted().length === 300);
    expect(box.stats()).toMatchObject({
      down: { pending: 300, lastError: 'unreachable' },
      up: { pending: 0, delivered: 300 },
    });
    expect(box.held()).toBe(50);
    await box.close(50);
  });

  it('a hung sink costs a timeout per batch, never the enqueue', async () => {
    const r = await receiver();
    r.mode = 'hang';
    const box = outbox([httpJson(r)], { timeoutMs: 300 });
    const started = performance.now();
    for (let i = 0; i < 1000; i++) box.enqueue(decision(i));
    expect(performance.now() - started).toBeLessThan(200);
    await until(() => box.stats().http!.lastError === 'timeout');
    await box.close(50);
    // held, not lost
    const restarted = outbox([httpJson(r)]);
    expect(restarted.stats().http!.pending).toBe(1000);
    await restarted.close(50);
  });
});

describe('the outbox file', () => {
  it('holds at most memoryLimit events in memory while a sink is down; the file keeps the rest', async () => {
    const r = await receiver(false);
    const box = outbox([httpJson(r)], { memoryLimit: 50, batch: 40 });
    for (let i = 0; i < 300; i++) box.enqueue(decision(i));
    await box.flush();
    await box.deliver();
    expect(box.held()).toBe(50);
    expect(box.stats().http).toMatchObject({ pending: 300, lastError: 'unreachable' });
    await box.close(50);
    // a restart reads the file a few MiB at a time and holds no more either
    const again = outbox([httpJson(r)], { memoryLimit: 50, batch: 40 });
    expect(again.held()).toBe(50);
    expect(again.stats().http!.pending).toBe(300);
    for (let i = 300; i < 320; i++) again.enqueue(decision(i));
    await again.flush();
    expect(again.held()).toBe(50);
    expect(again.stats().http!.pending).toBe(320);
    // the sink takes 120, then fails; a restart reads the rest back without sending those again
    r.acceptAtMost = 120;
    await r.start('up');
    await until(() => r.accepted().length === 120 && again.stats().http!.lastError === 'http 503');
    await again.close(50);
    const third = outbox([httpJson(r)], { memoryLimit: 50, batch: 40 });
    expect(third.held()).toBeLessThanOrEqual(50);
    expect(third.stats().http!.pending).toBe(200);
    r.acceptAtMost = undefined;
    await until(() => r.accepted().length >= 320);
    await third.close();
    const ids = r.accepted().map((b) => b.id);
    expect(ids).toHaveLength(320);
    expect([...ids].sort()).toEqual([...Array(320).keys()].map((n) => decision(n).id));
    const last = outbox([httpJson(r)], { memoryLimit: 50 });
    expect([last.held(), last.stats().http!.pending]).toEqual([0, 0]);
    await last.close();
  });

  it('is compacted once mostly delivered, and what is still pending survives it', async () => {
    const up = await receiver();
    const down = await receiver(false);
    const box = outbox([httpJson(up)], { compactBytes: 64 * 1024 });
    for (let i = 0; i < 600; i++) box.enqueue(decision(i));
    await until(() => up.accepted().length === 600);
    await box.deliver();
    const after = statSync(sinkFile(file(), 'http')).size;
    expect(after).toBeLessThan(64 * 1024);
    await box.close();

    // two sinks, one down: the delivered events go, the pending ones stay
    const both = [httpJson(up), httpJson(down, { name: 'down' })];
    const mixed = outbox(both, { compactBytes: 32 * 1024 });
    for (let i = 1000; i < 1300; i++) mixed.enqueue(decision(i));
    await until(() => up.accepted().length === 900);
    await mixed.close(100);
    const restarted = outbox(both);
    expect(restarted.stats()).toEqual({
      http: { pending: 0, delivered: 0 },
      down: { pending: 300, delivered: 0 },
    });
    await down.start('up');
    await until(() => down.accepted().length === 300);
    await restarted.close();
    expect(up.accepted()).toHaveLength(900);
  });
});

describe('recovery from the ledger', () => {
  it('streams decisions recorded while no outbox write followed (a crash between), once', async () => {
    const r = await receiver();
    const ledgerPath = path.join(dir, 'ledger.db');
    const ledger = await openAuditLedger({ backend: 'sqlite', path: ledgerPath });
    try {
      const sinks = [httpJson(r)];
      const now = Date.parse('2026-01-02T03:04:05Z');
      // the outbox existed before these decisions: its mark is older than them
      const before = outbox(sinks, { now: () => now - 1000 });
      before.enqueue(decision(0));
      await before.close();
      await until(() => r.accepted().length === 1);
      // a gate that closed cleanly wrote everything: the next start does not read the ledger
      await ledger.append(decision(1), { n: 1 });
      const clean = outbox(sinks, { recoverSlackMs: 10_000 });
      expect(await clean.recover(ledger)).toBe(0);
      await clean.close();

      // A gate starts on the file (pid 9999999: no such process), records decisions, and dies
      // before its outbox write: only the ledger has them.
      const crashed = { t: 'open', id: 'crashed-gate', pid: 9_999_999, at: now };
      appendFileSync(sinkFile(file(), 'http'), `${JSON.stringify(crashed)}\n`);
      for (let i = 2; i <= 5; i++) await ledger.append(decision(i), { n: i });
      const after = outbox(sinks, { recoverSlackMs: 10_000 });
      // the ledger's window holds the one recorded beside the clean gate too: not lost either
      expect(await after.recover(ledger)).toBe(5);
      await until(() => r.accepted().length === 6);
      expect(await after.recover(ledger)).toBe(0);
      await after.close();
      expect(r.accepted().map((b) => b.id)).toEqual([0, 1, 2, 3, 4, 5].map((n) => decision(n).id));
      // recovered for the gate that died: a third start does not read the ledger for it again
      const third = outbox(sinks, { recoverSlackMs: 10_000 });
      expect(await third.recover(ledger)).toBe(0);
      await third.close();
      expect(r.accepted()).toHaveLength(6);
      expect(readFileSync(sinkFile(file(), 'http'), 'utf8')).toContain(
        '{"t":"closed","id":"crashed-gate"',
      );
    } finally {
      await ledger.close();
    }
  });
});

describe('where the streams are kept', () => {
  it('a file per sink beside the outbox: a plain name as it is, any other made one, never shared', () => {
    expect(sinkFile('/var/gate/outbox.sinks.jsonl', 'collector')).toBe(
      '/var/gate/outbox.sinks.collector.jsonl',
    );
    const a = sinkFile('/g/outbox.sinks.jsonl', 'http://collector:4318/v1/logs');
    const b = sinkFile('/g/outbox.sinks.jsonl', 'http://collector:4318/v1/logs/');
    expect(a).toMatch(/^\/g\/outbox\.sinks\.collector-4318-v1-logs-[0-9a-f]{8}\.jsonl$/);
    expect(b).not.toBe(a);
    expect(sinkFile('/g/o.jsonl', '../../etc/passwd')).toMatch(
      /^\/g\/o\.-etc-passwd-[0-9a-f]{8}\.jsonl$/,
    );
  });
});
