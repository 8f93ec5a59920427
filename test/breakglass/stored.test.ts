import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { Decision } from '../../src/decision.js';
import type { CheckRequest, Gate } from '../../src/gate.js';
import { ONCALL, approvedRequest, gateFor, hex, signed, statementOf } from './support.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Stored break-glass requests through the gate itself (src/breakglass/stored.ts): reuse until
 * expiry or once, by id or by its bundles; expiry at the time of each use; revocation, and a
 * revocation racing uses. Each gate is real: the requires-provenance policy denies the app, and
 * the ledger is a SQLite file.
 */
const APP = hex('stored break-glass app');

let svc: LocalSigstore;
const gates: Gate[] = [];
beforeAll(async () => {
  svc = await startLocalSigstore();
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await svc?.close();
});

async function gate(deps: Parameters<typeof gateFor>[3] = {}, doc: Record<string, unknown> = {}) {
  const g = await gateFor(svc, doc, undefined, deps);
  gates.push(g.gate);
  return g;
}

const ask = (extra: Partial<CheckRequest>, environment = 'production'): CheckRequest => ({
  subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
  environment,
  ...extra,
});

const codes = (d: Decision) => d.breakGlassRefused?.map((r) => r.code) ?? [];

async function stored(g: Gate, over: Parameters<typeof approvedRequest>[2] = {}) {
  const r = await approvedRequest(svc, [APP], over);
  const registered = await g.breakGlass!.register(r.bundles);
  expect(registered).toMatchObject({ ok: true, requestId: r.id });
  return r;
}

describe('a stored request is used by id', () => {
  it('until it expires (reuse: until_expiry), each use an override naming it; then BREAK_GLASS_EXPIRED', async () => {
    let clock = Date.now();
    const { gate: g } = await gate({ now: () => new Date(clock) });
    const r = await stored(g);
    for (let i = 0; i < 3; i++) {
      const d = await g.check(ask({ breakGlassId: r.id }));
      expect(d.outcome).toBe('override');
      expect(d.override).toMatchObject({ requestId: r.id, reuse: 'until_expiry' });
    }
    clock += 61 * 60_000;
    const late = await g.check(ask({ breakGlassId: r.id }));
    expect(late.outcome).toBe('deny');
    expect(codes(late)).toEqual(['BREAK_GLASS_EXPIRED']);
  });

  it('once in an environment whose reuse is single: BREAK_GLASS_REPLAYED after', async () => {
    const { gate: g } = await gate();
    const statement = statementOf([APP], { environment: 'staging' });
    expect(await g.breakGlass!.register([await signed(svc, ONCALL, statement)])).toMatchObject({
      ok: true,
    });
    const id = statement.predicate.requestId;
    const first = await g.check(ask({ breakGlassId: id }, 'staging'));
    expect(first.outcome).toBe('override');
    expect(first.override?.reuse).toBeUndefined();
    const second = await g.check(ask({ breakGlassId: id }, 'staging'));
    expect([second.outcome, codes(second)]).toEqual(['deny', ['BREAK_GLASS_REPLAYED']]);
  });

  it('an id and bundles at once is a usage error, not a guess which counts', async () => {
    const { gate: g } = await gate();
    const r = await approvedRequest(svc, [APP]);
    const items = [{ source: 'b', bytes: Buffer.from(JSON.stringify(r.bundles[0])) }];
    await expect(g.check(ask({ breakGlassId: r.id, breakGlass: items }))).rejects.toMatchObject({
      code: 'USAGE_ERROR',
    });
  });

  it('an id that names no stored request is refused (BREAK_GLASS_UNKNOWN), never guessed', async () => {
    const { gate: g } = await gate();
    const d = await g.check(ask({ breakGlassId: 'req-made-up-12345' }));
    expect([d.outcome, codes(d)]).toEqual(['deny', ['BREAK_GLASS_UNKNOWN']]);
  });
});

describe('a JSON Lines ledger', () => {
  it('stores no requests: posting one could not be recorded (LEDGER_UNAVAILABLE), naming one finds none', async () => {
    const { gate: g } = await gate({}, { ledger: { backend: 'jsonl', path: 'decisions.jsonl' } });
    const r = await approvedRequest(svc, [APP]);
    await expect(g.breakGlass!.register(r.bundles)).rejects.toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
    });
    const d = await g.check(ask({ breakGlassId: r.id }));
    expect([d.outcome, codes(d)]).toEqual(['deny', ['BREAK_GLASS_UNKNOWN']]);
    expect(d.breakGlassRefused![0]!.message).toContain('hash-chained ledger');
  });
});

describe('revocation', () => {
  it('also refuses the request presented as bundles (gate check --break-glass)', async () => {
    const { gate: g } = await gate();
    const r = await stored(g);
    const items = r.bundles.map((b, i) => ({
      source: `bundle-${i}`,
      bytes: Buffer.from(JSON.stringify(b)),
    }));
    // reusable: the same bundles override twice
    expect((await g.check(ask({ breakGlass: items }))).outcome).toBe('override');
    expect((await g.check(ask({ breakGlass: items }))).outcome).toBe('override');
    expect(await g.breakGlass!.revoke(r.id, 'cli', 'the fix shipped')).toMatchObject({ ok: true });
    const after = await g.check(ask({ breakGlass: items }));
    expect([after.outcome, codes(after)]).toEqual(['deny', ['BREAK_GLASS_REVOKED']]);
  });

  it('racing uses: every override is recorded before the revocation in the chain, every use after is refused', async () => {
    const { gate: g, ledger } = await gate();
    const r = await stored(g);
    const uses = Array.from({ length: 12 }, () => g.check(ask({ breakGlassId: r.id })));
    const revocation = g.breakGlass!.revoke(r.id, 'server');
    const more = Array.from({ length: 12 }, () => g.check(ask({ breakGlassId: r.id })));
    const decisions = await Promise.all([...uses, ...more]);
    expect(await revocation).toMatchObject({ ok: true });
    for (const d of decisions) {
      if (d.outcome === 'override') continue;
      expect([d.outcome, codes(d)]).toEqual(['deny', ['BREAK_GLASS_REVOKED']]);
    }
    const l = createSqliteLedger({ path: ledger, readOnly: true });
    try {
      const revokedAt = (await l.breakGlassRequest!(r.id))!.revoked!.seq;
      const overrides = [];
      for await (const rec of l.records()) if (rec.outcome === 'override') overrides.push(rec.seq);
      expect(overrides.length).toBe(decisions.filter((d) => d.outcome === 'override').length);
      expect(overrides.every((seq) => seq < revokedAt)).toBe(true);
      expect(await l.verify()).toMatchObject({ ok: true });
    } finally {
      await l.close();
    }
    // and from now on, nothing
    const late = await g.check(ask({ breakGlassId: r.id }));
    expect(codes(late)).toEqual(['BREAK_GLASS_REVOKED']);
  });

  it('of a request never posted ends its bundles too; revoking twice is refused', async () => {
    const { gate: g } = await gate();
    const unposted = await approvedRequest(svc, [APP]);
    const items = unposted.bundles.map((b, i) => ({
      source: `bundle-${i}`,
      bytes: Buffer.from(JSON.stringify(b)),
    }));
    expect((await g.check(ask({ breakGlass: items }))).outcome).toBe('override');
    expect(await g.breakGlass!.revoke(unposted.id, 'cli')).toMatchObject({
      ok: true,
      stored: false,
    });
    const after = await g.check(ask({ breakGlass: items }));
    expect([after.outcome, codes(after)]).toEqual(['deny', ['BREAK_GLASS_REVOKED']]);
    // nor can it be posted now
    expect(await g.breakGlass!.register(unposted.bundles)).toMatchObject({
      ok: false,
      refusal: { code: 'BREAK_GLASS_REVOKED' },
    });
    const r = await stored(g);
    expect(await g.breakGlass!.revoke(r.id, 'cli')).toMatchObject({ ok: true, stored: true });
    expect(await g.breakGlass!.revoke(r.id, 'cli')).toMatchObject({
      ok: false,
      refusal: { code: 'BREAK_GLASS_REVOKED' },
    });
  });
});
