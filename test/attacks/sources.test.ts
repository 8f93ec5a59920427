import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Source } from '../../src/collect/types.js';
import type { Gate } from '../../src/gate.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { startStoreServer, type StoreServer } from '../support/store-server.js';
import { bytesOf, gateOver, hex, requestFor, statementAbout, tmp } from './gate-support.js';
import { expectDecision } from './report.js';

/**
 * Attack corpus: the sources. A source that fails is "could not decide", never "nothing found"
 * (which a policy would read as a plain deny, or worse, as no objection); a source that hangs or
 * asks to be waited for an hour is cut off by the decision's one deadline (the earlier attack
 * pass's unbounded waits). Real store server, real file source.
 */
const ARTIFACT = Buffer.from('sources attack artifact\n');
const A = hex(ARTIFACT);

let svc: LocalSigstore;
let store: StoreServer;
let evidenceDir: string;
const gates: Gate[] = [];

beforeAll(async () => {
  [svc, store] = await Promise.all([startLocalSigstore(), startStoreServer()]);
  const m = await mintDSSEBundle(svc, {
    statement: statementAbout([A]),
    version: '0.3',
    signer: 'keyless',
  });
  evidenceDir = tmp('evidence');
  writeFileSync(path.join(evidenceDir, 'provenance.sigstore.json'), bytesOf(m.bundle));
  store.add(`sha256:${A}`, m.bundle);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([svc?.close(), store?.close()]);
});

async function configured(sources: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const g = await gateOver(svc, {
    configuredSources: true,
    doc: { sources: { bundles: [evidenceDir], ...sources }, ...extra },
  });
  gates.push(g);
  return g;
}

describe('a source error is never read as "nothing found"', () => {
  it('the store answering garbage: could not decide, though the files hold valid evidence', async () => {
    expect(
      (await (await configured({ store: { url: store.url } })).check(requestFor(A))).outcome,
    ).toBe('allow');
    store.fault = 'malformed-json';
    try {
      const g = await configured({ store: { url: store.url } });
      const d = await g.check(requestFor(A));
      expectDecision(
        'source error read as nothing found (garbage)',
        undefined,
        d,
        'error',
        'SOURCE_BAD_RESPONSE',
      );
    } finally {
      store.fault = undefined;
    }
  });

  it('the store unreachable: SOURCE_UNREACHABLE, could not decide', async () => {
    const g = await configured({
      store: { url: 'http://127.0.0.1:9/repos/acme/app', timeoutMs: 2000 },
    });
    const d = await g.check(requestFor(A));
    expectDecision(
      'source error read as nothing found (unreachable)',
      undefined,
      d,
      'error',
      'SOURCE_UNREACHABLE',
    );
  });

  it('a source reporting a failure or throwing: could not decide, never nothing found', async () => {
    const failing: Source = {
      name: 'failing',
      collect: async () => ({
        evidence: [],
        rejected: [],
        failures: [
          { source: 'failing', code: 'SOURCE_UNREACHABLE', message: 'connection refused' },
        ],
      }),
    };
    const d = await (await gateOver(svc, { sources: [failing] })).check(requestFor(A));
    expectDecision('source failure reported', undefined, d, 'error', 'SOURCE_UNREACHABLE');
    const throwing: Source = {
      name: 'throwing',
      collect: async () => {
        throw new Error('socket hang up');
      },
    };
    const t = await gateOver(svc, { sources: [throwing] });
    gates.push(t);
    const e = await t.check(requestFor(A));
    // (a source's exception is its coded failure: it used to escape gate.check uncoded)
    expectDecision('source throwing', undefined, e, 'error', 'SOURCE_BAD_RESPONSE');
    expect(e.sourceFailures[0]).toMatchObject({ source: 'throwing', message: 'socket hang up' });
  });
});

describe('no unbounded waits', () => {
  it('a store that hangs is cut off by the deadline: SOURCE_TIMEOUT, could not decide', async () => {
    store.fault = 'hang';
    try {
      const g = await configured({ store: { url: store.url } }, { deadlineMs: 60_000 });
      const started = Date.now();
      const d = await g.check(requestFor(A, 'production', { deadlineMs: 700 }));
      expect(Date.now() - started).toBeLessThan(700 + 2000);
      expectDecision('unbounded wait: hanging source', undefined, d, 'error', 'SOURCE_TIMEOUT');
    } finally {
      store.fault = undefined;
    }
  });

  it('Retry-After: 3600 is not waited out past the deadline', async () => {
    store.fault = { status: 429, retryAfter: '3600' };
    try {
      const g = await configured(
        { store: { url: store.url, timeoutMs: 2000 } },
        { deadlineMs: 1000 },
      );
      const started = Date.now();
      const d = await g.check(requestFor(A));
      expect(Date.now() - started).toBeLessThan(1000 + 2000);
      expectDecision('unbounded wait: Retry-After 3600', undefined, d, 'error', 'SOURCE_TIMEOUT');
    } finally {
      store.fault = undefined;
    }
  });
});
