import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStoreServer, type StoreServer } from '../support/store-server.js';
import { reportFault } from './report.js';
import {
  ANSWER_MARGIN_MS,
  check,
  closedPortUrl,
  DEADLINE_MS,
  expectCouldNotDecide,
  decide,
  hex,
  killChildren,
  readLedger,
  startFaulty,
  startFixture,
  startServe,
  UNREACHABLE,
  prefetch,
  type Run,
  writeConfig,
  type Answer,
  type Faulty,
  type Fixture,
  type Misbehaviour,
} from './support.js';

/**
 * The attestation store goes wrong under a real `gate check` and a real `gate serve`: down,
 * hanging, dripping a byte a second, garbage, JSON of the wrong shape, a body cut short, a 429
 * storm asking to come back in a day, and the same for the bundle_url a store entry points at.
 * The subject has provenance in the healthy store, so the policy would allow it: every fault
 * must turn that into "could not decide" (exit 2, HTTP 503) within the decision's deadline,
 * with a code and a message naming the store, and the ledger must hold exactly the decisions
 * that were answered.
 */
const APP = hex('faults: an app the store has provenance for');

let fx: Fixture;
let store: StoreServer;
const servers: Faulty[] = [];

beforeAll(async () => {
  fx = await startFixture();
  store = await startStoreServer();
  store.add(`sha256:${APP}`, await fx.provenance(APP));
});
afterAll(async () => {
  killChildren();
  await Promise.all(servers.map((s) => s.close()));
  await store?.close();
  await fx?.close();
});

const storeConfig = (name: string, url: string) =>
  writeConfig(fx, fx.dir, `${name}.yaml`, { sources: { store: { url } } });

describe('gate check against a healthy store', () => {
  it('allows the subject (what every fault below must not turn into an allow)', async () => {
    const config = storeConfig('store-healthy', store.url);
    const run = await check(config, APP);
    expect(run.stderr).toBe('');
    expect([run.code, run.decision?.outcome]).toEqual([0, 'allow']);
    expect((await readLedger(config)).ids).toEqual([run.decision!.id]);
  });
});

/** What a store fault must come to: the codes, and whether the deadline is what ended it. */
const FAULTS: Array<{
  mode: Misbehaviour | 'down';
  codes: string[];
  byDeadline: boolean;
  /** what the message says happened */
  reason: RegExp;
}> = [
  { mode: 'down', codes: UNREACHABLE, byDeadline: false, reason: /econnrefused/ },
  { mode: 'hang', codes: ['SOURCE_TIMEOUT'], byDeadline: true, reason: /was cancelled/ },
  { mode: 'drip', codes: ['SOURCE_TIMEOUT'], byDeadline: true, reason: /was cancelled/ },
  {
    mode: 'garbage',
    codes: ['SOURCE_BAD_RESPONSE'],
    byDeadline: false,
    reason: /answered malformed json$/,
  },
  {
    mode: 'wrong-json',
    codes: ['SOURCE_BAD_RESPONSE'],
    byDeadline: false,
    reason: /answered without an attestations list$/,
  },
  { mode: 'truncated', codes: UNREACHABLE, byDeadline: false, reason: /und_err_socket/ },
  // Retry-After is honoured only within the deadline, never for a day; the reason says so
  {
    mode: 'storm',
    codes: ['SOURCE_TIMEOUT'],
    byDeadline: true,
    reason: /while waiting to retry after http 429, which asked to retry after 100000 s/,
  },
];

async function faultyUrl(mode: Misbehaviour | 'down'): Promise<string> {
  if (mode === 'down') return closedPortUrl();
  const s = await startFaulty(mode);
  servers.push(s);
  return s.url;
}

describe('gate check against a store that', () => {
  let runs: Map<string, Promise<{ url: string; config: string; run: Run }>>;
  beforeAll(() => {
    runs = prefetch(
      FAULTS.map((f) => f.mode),
      1,
      async (mode) => {
        const url = await faultyUrl(mode);
        const config = storeConfig(`store-${mode}`, url);
        return { url, config, run: await check(config, APP) };
      },
    );
  });
  for (const { mode, codes, byDeadline, reason } of FAULTS) {
    it(`is ${mode}: could not decide (${codes.join(' or ')}) within the deadline, naming the store`, async () => {
      const { url, config, run } = await runs.get(mode)!;
      reportFault(
        `check: store ${mode}`,
        run.decision?.outcome ?? `exit ${run.code}`,
        run.decision?.error?.code,
        run.ms,
      );
      expectCouldNotDecide(run, codes, `store:${url}`);
      expect(run.decision!.error!.message).toMatch(reason);
      expect(run.decision!.sourceFailures).toEqual([
        expect.objectContaining({ source: `store:${url}`, code: run.decision!.error!.code }),
      ]);
      if (byDeadline) {
        expect(run.ms).toBeGreaterThanOrEqual(DEADLINE_MS);
      }
      // the could-not-decide is itself recorded, and it is all the ledger holds
      expect(await readLedger(config)).toMatchObject({ ids: [run.decision!.id], ok: true });
    });
  }
});

describe('gate check against a bundle_url that', () => {
  const BLOB_FAULTS = [
    { mode: 'hang', codes: ['SOURCE_TIMEOUT'] },
    { mode: 'truncated', codes: UNREACHABLE },
  ] as const;
  let runs: Map<string, Promise<{ blob: string; config: string; run: Run }>>;
  beforeAll(() => {
    runs = prefetch(
      BLOB_FAULTS.map((f) => f.mode),
      1,
      async (mode) => {
        const blob = await faultyUrl(mode);
        const subject = hex(`faults: bundle_url ${mode}`);
        store.addRaw(`sha256:${subject}`, { bundle: null, bundle_url: `${blob}/bundle/${mode}` });
        const config = storeConfig(`blob-${mode}`, store.url);
        return { blob, config, run: await check(config, subject) };
      },
    );
  });
  for (const { mode, codes } of BLOB_FAULTS) {
    it(`is ${mode}: the store could not decide (${codes.join(' or ')}) within the deadline`, async () => {
      const { blob, config, run } = await runs.get(mode)!;
      reportFault(
        `check: store bundle_url ${mode}`,
        run.decision?.outcome ?? `exit ${run.code}`,
        run.decision?.error?.code,
        run.ms,
      );
      expectCouldNotDecide(run, [...codes], `store:${store.url}`);
      expect(run.decision!.error!.message).toContain(`${blob}/bundle/${mode}`);
      expect(await readLedger(config)).toMatchObject({ ids: [run.decision!.id], ok: true });
    });
  }
});

describe('gate serve while its store goes wrong and comes back', () => {
  it('answers 503 within the deadline for each fault, 200 when healthy; the ledger holds exactly the answered decisions', async () => {
    const config = storeConfig('serve-store', store.url);
    const serving = await startServe(config);
    const answered: Answer[] = [];
    const batch = async (label: string, fault: StoreServer['fault']) => {
      store.fault = fault;
      const answers = await Promise.all([1, 2, 3].map(() => decide(serving.url, APP)));
      for (const a of answers) {
        expect(a, `${label}: every request is answered`).toBeDefined();
        answered.push(a!);
        reportFault(`serve: store ${label}`, a!.body.outcome, a!.body.error?.code, a!.ms);
      }
      return answers.map((a) => a!);
    };
    try {
      for (const a of await batch('healthy', undefined)) {
        expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      }
      const faults: Array<[string, StoreServer['fault'], string]> = [
        ['hang', 'hang', 'SOURCE_TIMEOUT'],
        ['storm', { status: 429, retryAfter: '100000' }, 'SOURCE_TIMEOUT'],
        ['garbage', 'malformed-json', 'SOURCE_BAD_RESPONSE'],
        ['500', { status: 500 }, 'SOURCE_BAD_RESPONSE'],
      ];
      for (const [label, fault, code] of faults) {
        for (const a of await batch(label, fault)) {
          expect([a.status, a.body.outcome, a.body.allow, a.body.error?.code]).toEqual([
            503,
            'error',
            false,
            code,
          ]);
          expect(a.body.error!.message).toContain(`store:${store.url}`);
          expect(a.ms).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
        }
      }
      for (const a of await batch('back', undefined)) {
        expect([a.status, a.body.outcome]).toEqual([200, 'allow']);
      }
    } finally {
      store.fault = undefined;
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exited).code).toBe(0);
    const recorded = await readLedger(config);
    expect(recorded.ok).toBe(true);
    expect(new Set(recorded.ids)).toEqual(new Set(answered.map((a) => a.body.id)));
    expect(recorded.ids).toHaveLength(answered.length);
    for (const a of answered) expect(recorded.outcomes.get(a.body.id)).toBe(a.body.outcome);
  }, 90_000);
});
