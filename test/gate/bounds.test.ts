import { createHash } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { normalise } from '../../src/config.js';
import { createGate, type CheckRequest } from '../../src/gate.js';
import { schemaChecker } from '../../src/util/schemas.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { FIXTURES } from '../helpers.js';
import { startRekorServer, type RekorServer } from '../support/rekor-server.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';

/**
 * A decision is bounded in time and in size, whatever its sources and its caller do: one deadline
 * covers every source with its retries and Retry-After waits; a subject named many times is
 * decided on and recorded once; the caller's unsigned context is marked as such.
 */
const checkDecision = schemaChecker('decision.schema.json', 'POLICY_OUTPUT_INVALID', 'decision');
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const APP = hex('bounded app');

let svc: LocalSigstore;
let trust: Trust;
let dir: string;
let store: StoreServer;
let rekor: RekorServer;

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-bounds-'));
  store = await startStoreServer();
  rekor = await startRekorServer();
});
afterAll(async () => {
  await Promise.all([svc.close(), store.close(), rekor.close()]);
});

function gateWith(doc: Record<string, unknown>) {
  const ledger = path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db');
  const config = normalise(
    {
      policy: { path: path.join(FIXTURES, 'policies', 'requires-provenance') },
      ledger: { path: ledger },
      ...doc,
    },
    dir,
    'test-config',
  );
  // the configured sources are wired by createGate itself
  const gate = createGate(config, { trust });
  return { gate, ledger };
}

const req = (extra: Partial<CheckRequest> = {}): CheckRequest => ({
  subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
  environment: 'production',
  ...extra,
});

describe('one deadline per decision', () => {
  it('cuts off a store that answers 429 with Retry-After: 3600', async () => {
    store.fault = { status: 429, retryAfter: '3600' };
    const { gate } = gateWith({
      deadlineMs: 1500,
      sources: { store: { url: store.url, timeoutMs: 2000 } },
    });
    const g = await gate;
    const started = Date.now();
    const d = await g.check(req());
    const took = Date.now() - started;
    store.fault = undefined;
    await g.close();
    expect(d.outcome).toBe('error');
    expect(d.allow).toBe(false);
    expect(d.sourceFailures[0]).toMatchObject({ code: 'SOURCE_TIMEOUT' });
    expect(d.sourceFailures[0]!.message).toMatch(/deadline of 1500 ms/);
    expect(took).toBeLessThan(1500 + 2000);
  });

  it('cuts off a Rekor log that answers 429 with Retry-After: 3600', async () => {
    rekor.faults.failNext = { count: 100, status: 429, retryAfter: '3600' };
    const { gate } = gateWith({
      deadlineMs: 1500,
      sources: { rekor: { url: rekor.url, timeoutMs: 2000 } },
    });
    const g = await gate;
    const started = Date.now();
    const d = await g.check(req());
    const took = Date.now() - started;
    rekor.reset();
    await g.close();
    expect(d.outcome).toBe('error');
    expect(d.sourceFailures.map((f) => f.code)).toEqual(['SOURCE_TIMEOUT']);
    expect(took).toBeLessThan(1500 + 2000);
  });

  it('is shortened by the caller (admission passes what its webhook timeout leaves)', async () => {
    store.fault = 'hang';
    const { gate } = gateWith({ deadlineMs: 60_000, sources: { store: { url: store.url } } });
    const g = await gate;
    const started = Date.now();
    const d = await g.check(req({ deadlineMs: 700 }));
    const took = Date.now() - started;
    store.fault = undefined;
    await g.close();
    expect(d.outcome).toBe('error');
    expect(d.sourceFailures[0]!.message).toMatch(/deadline of 700 ms/);
    expect(took).toBeLessThan(700 + 2000);
  });
});

describe('bounded records', () => {
  it('decides on and records a subject named 100 times once', async () => {
    const { gate, ledger } = gateWith({});
    const g = await gate;
    const one = await g.check(req());
    const many = await g.check(
      req({
        subjects: Array.from({ length: 100 }, () => ({
          digest: { algorithm: 'sha256' as const, hex: APP },
        })),
      }),
    );
    await g.close();
    expect(many.subjects).toHaveLength(1);
    expect(many.outcome).toBe(one.outcome);
    const l = createSqliteLedger({ path: ledger });
    const records = await l.query({ limit: 10 });
    await l.close();
    const sizes = records.map((r) => JSON.stringify(r).length);
    expect(Math.max(...sizes)).toBeLessThan(2 * Math.min(...sizes));
    expect(statSync(ledger).size).toBeGreaterThan(0);
  });
});

describe("the caller's context", () => {
  it('is refused with INPUT_TOO_DEEP when nested 5,000 levels, before deciding or recording', async () => {
    const { gate, ledger } = gateWith({});
    const g = await gate;
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    await expect(g.check(req({ context: deep }))).rejects.toMatchObject({ code: 'INPUT_TOO_DEEP' });
    let fine: Record<string, unknown> = {};
    for (let i = 0; i < 31; i++) fine = { a: fine };
    expect((await g.check(req({ context: fine }))).outcome).toBe('deny');
    await g.close();
    const l = createSqliteLedger({ path: ledger });
    expect(await l.query({ limit: 10 })).toHaveLength(1);
    await l.close();
  });

  it('is marked unverified in the decision, with the keys it held', async () => {
    const { gate } = gateWith({});
    const g = await gate;
    const d = await g.check(req({ context: { changeKinds: ['metadata'], ticket: 'CHG-1' } }));
    const none = await g.check(req());
    await g.close();
    expect(d.context).toEqual({ verified: false, keys: ['changeKinds', 'ticket'] });
    expect(none.context).toBeUndefined();
    checkDecision(d);
  });
});

describe('deciding as of another time', () => {
  it('evaluates at that time and records when it was asked', async () => {
    const { gate } = gateWith({});
    const g = await gate;
    const at = new Date('2026-01-02T03:04:05.000Z');
    const d = await g.check(req({ at }));
    await g.close();
    expect(d.asOf).toBe(at.toISOString());
    expect(Math.abs(Date.parse(d.time) - Date.now())).toBeLessThan(60_000);
    checkDecision(d);
  });
});
