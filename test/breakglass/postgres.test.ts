import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import type { CheckRequest, Gate } from '../../src/gate.js';
import { startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { approvedRequest, gateFor, hex } from './support.js';

/**
 * Stored break-glass requests with the PostgreSQL ledger, as gate replicas share it: one replica
 * stores a request, another admits by it; a revocation on one ends it on the other; every use is
 * an override naming it, and the shared chain verifies.
 */
const APP = hex('postgres break-glass app');

let svc: LocalSigstore;
let pg: PostgresServer;
const gates: Gate[] = [];
beforeAll(async () => {
  [svc, pg] = await Promise.all([startLocalSigstore(), startPostgresServer()]);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([svc?.close(), pg?.close()]);
});

async function replica(url: string): Promise<Gate> {
  const { gate } = await gateFor(
    svc,
    { ledger: { backend: 'postgres' } },
    undefined,
    {},
    { GATE_LEDGER_URL: url },
  );
  gates.push(gate);
  return gate;
}

const ask = (breakGlassId: string): CheckRequest => ({
  subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
  environment: 'production',
  breakGlassId,
});
const codes = (d: Decision) => d.breakGlassRefused?.map((r) => r.code) ?? [];

describe('stored break-glass requests in PostgreSQL, shared by replicas', () => {
  it('stored on one replica, used on another, revoked on either', async () => {
    const url = await pg.createDatabase();
    const [a, b] = [await replica(url), await replica(url)];
    const r = await approvedRequest(svc, [APP]);
    expect(await a.breakGlass!.register(r.bundles)).toMatchObject({ ok: true, requestId: r.id });
    // the other replica sees it stored
    expect(await b.breakGlass!.register(r.bundles)).toMatchObject({
      ok: false,
      refusal: { code: 'BREAK_GLASS_EXISTS' },
    });
    const uses = await Promise.all([a, b, a, b].map((g) => g.check(ask(r.id))));
    for (const d of uses)
      expect(d.override).toMatchObject({ requestId: r.id, reuse: 'until_expiry' });
    expect(await b.breakGlass!.revoke(r.id, 'server')).toMatchObject({ ok: true, stored: true });
    for (const g of [a, b])
      expect(codes(await g.check(ask(r.id)))).toEqual(['BREAK_GLASS_REVOKED']);
    const v = await a.ledger!.verify();
    expect(v).toMatchObject({ ok: true });
    const events = (await a.ledger!.breakGlassRecords!()).map((x) => x.breakGlass.action);
    expect(events).toEqual(['revoked', 'refused', 'accepted']);
  });
});
