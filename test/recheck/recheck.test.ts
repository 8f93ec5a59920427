import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createGate, type Gate } from '../../src/gate.js';
import { parseDuration, recheck } from '../../src/recheck.js';
import { parseSubject } from '../../src/subject.js';
import { expectCode } from '../helpers.js';
import { otlpRecords, SinkReceiver } from '../notify/sink-receiver.js';
import { CVE, startRecheckFixture, startWebhook, type RecheckFixture } from './fixture.js';

/**
 * A recheck through a real gate in this process: the default policy library, scans signed by the
 * local Sigstore services, a SQLite ledger, a webhook receiver on 127.0.0.1, and the gate's clock
 * under the test's control (the waiver expires when the clock passes it).
 */
const HOUR = 3_600_000;
let fx: RecheckFixture;
let hook: Awaited<ReturnType<typeof startWebhook>>;
let gate: Gate;
let collector: SinkReceiver;
let clock: number;
const t0 = Date.now();

beforeAll(async () => {
  fx = await startRecheckFixture();
  hook = await startWebhook();
  collector = await SinkReceiver.up();
  const config = loadConfig(
    fx.writeConfig({
      waiverExpires: new Date(t0 + HOUR),
      webhook: hook.url,
      sinks: [{ name: 'collector', type: 'otlp-http', url: collector.url() }],
    }),
  );
  clock = t0;
  gate = await createGate(config, { now: () => new Date(clock) });
}, 60_000);
afterAll(async () => {
  await gate?.close();
  await hook?.close();
  await collector?.stop();
  await fx?.close();
});

const check = (hex: string) =>
  gate.check({ subjects: [parseSubject(`sha256:${hex}`)], environment: 'production' });

describe('gate recheck, in process', () => {
  let allowedVulnerable: string;
  let allowedClean: string;

  it('finds nothing changed while the waiver holds, and records each recheck linked', async () => {
    const v = await check(fx.vulnerable);
    const c = await check(fx.clean);
    const d = await check(fx.unscanned);
    expect([v.outcome, c.outcome, d.outcome]).toEqual(['allow', 'allow', 'deny']);
    // a deployment is checked more than once: only the newest of a subject is rechecked
    const again = await check(fx.vulnerable);
    allowedVulnerable = again.id;
    allowedClean = c.id;

    clock = t0 + 10 * 60_000;
    const report = await recheck(gate, {
      environment: 'production',
      sinceMs: HOUR,
      now: () => new Date(clock),
    });
    expect(report.items.map((i) => [i.of.id, i.status, i.decision.outcome]).sort()).toEqual(
      [
        [allowedVulnerable, 'unchanged', 'allow'],
        [allowedClean, 'unchanged', 'allow'],
      ].sort(),
    );
    expect([report.drift, report.undecided, report.announced]).toEqual([0, 0, 0]);
    for (const i of report.items) {
      const recorded = await gate.ledger!.get(i.decision.id);
      expect(recorded!.decision.recheckOf).toEqual({ id: i.of.id, outcome: 'allow' });
      expect(recorded!.decision.time).toBe(new Date(clock).toISOString());
    }
    expect(hook.bodies).toEqual([]);
  });

  it('finds drift once the waiver expires: recorded, reported with why, announced', async () => {
    clock = t0 + 2 * HOUR;
    const report = await recheck(gate, {
      environment: 'production',
      sinceMs: 7 * 24 * HOUR,
      now: () => new Date(clock),
    });
    // the rechecks of the first run are not rechecked themselves
    expect(report.items).toHaveLength(2);
    const drift = report.items.find((i) => i.status === 'drift')!;
    expect(drift.of).toMatchObject({ id: allowedVulnerable, outcome: 'allow' });
    expect(drift.decision.outcome).toBe('deny');
    expect(drift.reasons.join('\n')).toContain(`vulnerability ${CVE} (critical)`);
    expect(drift.reasons.join('\n')).toContain('its waiver expired at');
    expect(report.items.find((i) => i.of.id === allowedClean)!.status).toBe('unchanged');
    expect([report.drift, report.announced]).toEqual([1, 1]);

    const recorded = await gate.ledger!.get(drift.decision.id);
    expect(recorded).toMatchObject({ outcome: 'deny', environment: 'production' });
    expect(recorded!.decision.recheckOf).toEqual({ id: allowedVulnerable, outcome: 'allow' });
    expect(recorded!.rules).toEqual(['vulnerabilities.severity']);

    // announced through the outbox to the webhook, once
    expect(hook.bodies).toHaveLength(1);
    const [body] = hook.bodies;
    expect(body.text).toContain(`drift in production: sha256:${fx.vulnerable}`);
    expect(body.text).toContain(`was allow (decision ${allowedVulnerable})`);
    expect(body.drift).toMatchObject({
      was: { id: allowedVulnerable, outcome: 'allow' },
      recheck: { id: drift.decision.id, outcome: 'deny' },
    });
    expect(body.drift.reasons.join('\n')).toContain(CVE);
    const outbox = readFileSync(path.join(fx.dir, 'outbox.jsonl'), 'utf8');
    expect(outbox).toContain('"type":"delivered"');

    // and the sinks get the recheck's record, linked, like every recorded decision
    await gate.sinks!.flush();
    await gate.sinks!.deliver();
    const streamed = otlpRecords(collector.accepted()).find(
      (r) => r['gate.decision.id'] === drift.decision.id,
    );
    expect(streamed).toMatchObject({
      'gate.outcome': 'deny',
      'gate.recheck_of.id': allowedVulnerable,
      'gate.recheck_of.outcome': 'allow',
      'gate.rules': ['vulnerabilities.severity'],
    });
  });

  it('honours the window: decisions older than --since are not rechecked', async () => {
    clock = t0 + 3 * HOUR;
    const newer = await check(fx.clean);
    clock = t0 + 3 * HOUR + 60_000;
    const report = await recheck(gate, {
      environment: 'production',
      sinceMs: 30 * 60_000,
      now: () => new Date(clock),
    });
    expect(report.items.map((i) => i.of.id)).toEqual([newer.id]);
    expect(report.from).toBe(new Date(clock - 30 * 60_000).toISOString());
    // another environment's window holds nothing
    const staging = await recheck(gate, { environment: 'staging', sinceMs: 7 * 24 * HOUR });
    expect(staging.items).toEqual([]);
  });

  it('an override whose request has not expired is covered, not drift', async () => {
    const { judge } = await import('../../src/recheck.js');
    const was = await gate.ledger!.get(allowedVulnerable);
    const now = (await gate.ledger!.query({ outcome: 'deny', environment: 'production' })).find(
      (r) => r.decision.recheckOf?.id === allowedVulnerable,
    )!.decision;
    const override = {
      requestId: 'bg-1',
      requester: 'oncall@acme.example',
      justification: 'hotfix',
      ticket: 'INC-1',
      signers: ['lead@acme.example'],
      overridden: ['vulnerabilities.severity'],
    };
    const live = { ...was!.decision, outcome: 'override' as const };
    const until = new Date(Date.parse(now.time) + HOUR).toISOString();
    expect(judge({ ...live, override: { ...override, expiresAt: until } }, now)).toEqual({
      status: 'covered',
      reasons: [`still overridden by break-glass request bg-1 until ${until}`],
    });
    const expired = new Date(Date.parse(now.time) - 1).toISOString();
    const j = judge({ ...live, override: { ...override, expiresAt: expired } }, now);
    expect(j.status).toBe('drift');
    expect(j.reasons).toContain(`break-glass request bg-1 expired at ${expired}`);
  });
});

describe('durations', () => {
  it('reads 45s, 30m, 1h and 7d, and refuses anything else with a usage error', () => {
    expect([parseDuration('45s', 'x'), parseDuration('30m', 'x')]).toEqual([45_000, 1_800_000]);
    expect([parseDuration('1h', 'x'), parseDuration('7d', 'x')]).toEqual([HOUR, 7 * 24 * HOUR]);
    for (const bad of ['', '7', '0d', '1.5h', '-1h', '1w', ' 1h'])
      expectCode(() => parseDuration(bad, '--since'), 'USAGE_ERROR', /--since must be/);
  });
});
