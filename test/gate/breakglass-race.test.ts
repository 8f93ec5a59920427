import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/audit/ledger.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import { normalise } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * Two gates (two CLIs on one SQLite file, as two processes would be) use the same break-glass
 * request at the same moment. Each checks single use under its own lock, both find the request
 * unused, both record: exactly one override lands, and the loser is told BREAK_GLASS_REPLAYED,
 * not that the ledger is unavailable.
 */
const APP = createHash('sha256').update('raced app').digest('hex');
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();

let svc: LocalSigstore;
let trust: Trust;
let dir: string;

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-race-'));
});
afterAll(() => svc.close());

/** Both gates pass their single-use check before either records: the race, made certain. */
function barrier(parties: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return async () => {
    if (++arrived === parties) open();
    await opened;
  };
}

function racingLedger(file: string, wait: () => Promise<void>): Ledger {
  const real = createSqliteLedger({ path: file });
  return {
    append: (d, input) => real.append(d, input),
    consumed: async (id) => {
      const used = await real.consumed(id);
      await wait();
      return used;
    },
    close: () => real.close(),
  } as Ledger;
}

describe('a break-glass request used by two processes at once', () => {
  it('overrides once; the other is told BREAK_GLASS_REPLAYED', async () => {
    const ledgerFile = path.join(dir, 'ledger.db');
    const statement = breakGlassStatement({
      subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
      environment: 'dev',
      justification: 'customer outage, fix must ship now',
      ticket: 'INC-9',
      requester: createHash('sha256')
        .update(createPublicKey(pem).export({ format: 'der', type: 'spki' }))
        .digest('base64'),
      expiresInMinutes: 60,
      now: new Date(),
      requestId: 'req-raced-0001',
    });
    const minted = await mintDSSEBundle(svc, {
      statement,
      version: '0.3',
      signer: 'key',
      privateKey,
    });
    const request = { source: 'test', bytes: Buffer.from(JSON.stringify(minted.bundle)) };
    const config = normalise(
      {
        keys: [{ pem }],
        policy: {
          path: path.join(FIXTURES, 'policies', 'requires-provenance'),
          config: {
            break_glass: {
              environments: {
                dev: {
                  requesters: [{ key_id: statement.predicate.requester }],
                  max_expiry_minutes: 120,
                  reuse: 'single',
                },
              },
            },
          },
        },
        ledger: { path: ledgerFile },
      },
      dir,
      'test-config',
    );
    const wait = barrier(2);
    const gates = await Promise.all(
      [0, 1].map(() =>
        createGate(config, { trust, sources: () => [], ledger: racingLedger(ledgerFile, wait) }),
      ),
    );
    const decisions = await Promise.all(
      gates.map((g) =>
        g.check({
          subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
          environment: 'dev',
          breakGlass: [request],
        }),
      ),
    );
    await Promise.all(gates.map((g) => g.close()));
    const outcomes = decisions.map((d) => d.outcome).sort();
    expect(outcomes).toEqual(['deny', 'override']);
    const loser = decisions.find((d) => d.outcome === 'deny')!;
    expect(loser.error).toBeUndefined();
    expect(loser.breakGlassRefused).toContainEqual(
      expect.objectContaining({ code: 'BREAK_GLASS_REPLAYED', requestId: 'req-raced-0001' }),
    );
    // both decisions are recorded; the request is used by one override only
    const ledger = createSqliteLedger({ path: ledgerFile });
    const records = await ledger.query({ limit: 10 });
    await ledger.close();
    expect(records.map((r) => r.outcome).sort()).toEqual(['deny', 'override']);
  });
});
