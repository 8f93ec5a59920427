import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { LedgerRecord } from '../../src/audit/record.js';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import { createFileSource } from '../../src/collect/files.js';
import type { Source } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import { createGate, type CheckRequest, type Gate } from '../../src/gate.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { schemaChecker } from '../../src/util/schemas.js';
import { FIXTURES } from '../helpers.js';

const checkDecision = schemaChecker('decision.schema.json', 'POLICY_OUTPUT_INVALID', 'decision');
import { DEFAULT_IDENTITY, mintDSSEBundle, type KeylessIdentity } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The gate's wiring, collect -> verify -> evaluate -> decide -> audit, over real minted evidence
 * and a small policy compiled by the real opa; break-glass refusals one by one.
 */
const digestOf = (s: string) => createHash('sha256').update(s).digest('hex');
const APP = digestOf('app v1');
const OTHER = digestOf('another artifact');
const ONCALL: KeylessIdentity = { san: 'oncall@acme.example', issuer: 'https://accounts.example' };
const APPROVER: KeylessIdentity = { san: 'lead@acme.example', issuer: 'https://accounts.example' };
const STRANGER: KeylessIdentity = {
  san: 'mallory@evil.example',
  issuer: 'https://accounts.example',
};

let svc: LocalSigstore;
let trust: Trust;
let dir: string;

const provenance = (hex: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: hex } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://example.com/build/v1' },
    runDetails: { builder: { id: 'test' } },
  },
});

async function writeBundle(
  name: string,
  statement: object,
  identity: KeylessIdentity = DEFAULT_IDENTITY,
  into = dir,
) {
  const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless', identity });
  const file = path.join(into, name);
  writeFileSync(file, JSON.stringify(m.bundle));
  return file;
}

function configFor(ledger: string, extra: Record<string, unknown> = {}) {
  return normalise(
    {
      policy: {
        path: path.join(FIXTURES, 'policies', 'requires-provenance'),
        config: {
          break_glass: {
            environments: {
              production: {
                requesters: [{ san: ONCALL.san, issuer: ONCALL.issuer }],
                approvers: [{ san: APPROVER.san, issuer: APPROVER.issuer }],
                approvals: 1,
                max_expiry_minutes: 120,
                reuse: 'single',
              },
              dev: {
                requesters: [{ san: ONCALL.san, issuer: ONCALL.issuer }],
                max_expiry_minutes: 120,
                reuse: 'single',
              },
            },
          },
        },
      },
      ledger: { path: ledger },
      ...extra,
    },
    dir,
    'test-config',
  );
}

async function gateWith(
  evidenceDir: string,
  ledger = path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db'),
  sources?: Source[],
) {
  const config = configFor(ledger);
  return createGate(config, {
    trust,
    sources: () => sources ?? [createFileSource({ paths: [evidenceDir] })],
  });
}

const req = (hex: string, env = 'production', extra: Partial<CheckRequest> = {}): CheckRequest => ({
  subjects: [{ digest: { algorithm: 'sha256', hex } }],
  environment: env,
  ...extra,
});

async function breakGlass(
  name: string,
  signer: KeylessIdentity,
  over: Partial<Parameters<typeof breakGlassStatement>[0]> = {},
) {
  const statement = breakGlassStatement({
    subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
    environment: 'production',
    justification: 'customer outage, fix must ship now',
    ticket: 'INC-42',
    requester: ONCALL.san,
    expiresInMinutes: 60,
    now: new Date(),
    requestId: `req-${name}-0001`,
    ...over,
  });
  const file = await writeBundle(`${name}.bg.sigstore.json`, statement, signer);
  return { source: `file:${file}`, bytes: readFileSync(file) };
}

async function readLedger(file: string): Promise<LedgerRecord[]> {
  const ledger = createSqliteLedger({ path: file });
  const out: LedgerRecord[] = [];
  for await (const r of ledger.records()) out.push(r);
  await ledger.close();
  return out;
}

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-check-'));
});
afterAll(() => svc.close());

describe('when the evidence satisfies the policy', () => {
  let gate: Gate;
  let evidence: string;
  beforeAll(async () => {
    evidence = mkdtempSync(path.join(dir, 'ev-'));
    await writeBundle('provenance.sigstore.json', provenance(APP), DEFAULT_IDENTITY, evidence);
    await writeBundle('other.sigstore.json', provenance(OTHER), DEFAULT_IDENTITY, evidence);
    gate = await gateWith(evidence, path.join(evidence, 'ledger.db'));
  });

  it('allows, reports the evidence used, and records the decision', async () => {
    const d = await gate.check(req(APP));
    expect(d.outcome).toBe('allow');
    expect(d.allow).toBe(true);
    checkDecision(d);
    const used = d.evidence.filter((e) => e.status === 'verified');
    expect(used).toHaveLength(1);
    expect(used[0]).toMatchObject({
      predicateType: 'https://slsa.dev/provenance/v1',
      signer: { identity: DEFAULT_IDENTITY.san },
    });
    expect(d.evidence.find((e) => e.code === 'SUBJECT_MISMATCH')).toBeDefined();
    expect(d.digests).toMatchObject({ policy: gate.policy.digest, trustRoot: 'test' });
    const recorded = await readLedger(path.join(evidence, 'ledger.db'));
    expect(recorded.at(-1)!.decision).toEqual(d);
  });

  it('denies a digest without evidence and says what would pass', async () => {
    const d = await gate.check(req(digestOf('unknown')));
    expect(d.outcome).toBe('deny');
    expect(d.allow).toBe(false);
    expect(d.violations[0]).toMatchObject({
      id: 'test.provenance',
      remediation: 'attach a slsa provenance attestation',
    });
  });

  it('allows a would-deny in dry-run and records it as a deny', async () => {
    const d = await gate.check(req(digestOf('unknown'), 'production', { dryRun: true }));
    expect(d).toMatchObject({ outcome: 'deny', allow: true, mode: 'dry-run' });
  });

  it('decides a release set together: one component without evidence denies all', async () => {
    const d = await gate.check({
      subjects: [
        { digest: { algorithm: 'sha256', hex: APP }, name: 'app' },
        { digest: { algorithm: 'sha256', hex: digestOf('db') }, name: 'db' },
      ],
      environment: 'dev',
    });
    expect(d.outcome).toBe('deny');
    expect(d.violations.map((v) => v.subject)).toEqual([`sha256:${digestOf('db')}`]);
  });
});

describe('when the gate cannot decide', () => {
  it('a failed source is "could not decide", never "nothing found"', async () => {
    const failing: Source = {
      name: 'broken',
      collect: async () => ({
        evidence: [],
        rejected: [],
        failures: [
          { source: 'store:x', code: 'SOURCE_UNREACHABLE', message: 'connection refused' },
        ],
      }),
    };
    const gate = await gateWith(dir, undefined, [failing]);
    const d = await gate.check(req(APP));
    expect(d).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'SOURCE_UNREACHABLE' },
    });
  });

  it('a ledger that cannot be written is "could not decide", even for an allow', async () => {
    const evidence = mkdtempSync(path.join(dir, 'ev-'));
    await writeBundle('provenance.sigstore.json', provenance(APP), DEFAULT_IDENTITY, evidence);
    const ledgerFile = path.join(evidence, 'provenance.sigstore.json', 'ledger.db'); // a file is not a folder
    const gate = await gateWith(evidence, ledgerFile);
    const d = await gate.check(req(APP));
    expect(d).toMatchObject({
      outcome: 'error',
      allow: false,
      error: { code: 'LEDGER_UNAVAILABLE' },
    });
  });
});

describe('break glass', () => {
  let empty: string;
  beforeAll(() => {
    empty = mkdtempSync(path.join(tmpdir(), 'gate-empty-'));
  });

  it('turns a deny into an override listing what it overrode, once', async () => {
    const gate = await gateWith(empty);
    const request = await breakGlass('ok', ONCALL);
    const co = await (async () => {
      const statement = JSON.parse(
        Buffer.from(JSON.parse(request.bytes.toString()).dsseEnvelope.payload, 'base64').toString(),
      );
      const file = await writeBundle('ok.approval.sigstore.json', statement, APPROVER);
      return { source: `file:${file}`, bytes: readFileSync(file) };
    })();
    const d = await gate.check(req(APP, 'production', { breakGlass: [request, co] }));
    expect(d.outcome).toBe('override');
    expect(d.allow).toBe(true);
    expect(d.override).toMatchObject({
      requestId: 'req-ok-0001',
      requester: ONCALL.san,
      ticket: 'INC-42',
      overridden: ['test.provenance'],
    });
    expect(d.override!.signers.sort()).toEqual([APPROVER.san, ONCALL.san].sort());
    checkDecision(d);

    const replay = await gate.check(req(APP, 'production', { breakGlass: [request, co] }));
    expect(replay.outcome).toBe('deny');
    expect(replay.breakGlassRefused).toContainEqual(
      expect.objectContaining({ code: 'BREAK_GLASS_REPLAYED' }),
    );
  });

  it('cannot be used twice by two decisions racing', async () => {
    const gate = await gateWith(empty);
    const request = await breakGlass('race', ONCALL, { environment: 'dev' });
    const decisions = await Promise.all(
      Array.from({ length: 5 }, () => gate.check(req(APP, 'dev', { breakGlass: [request] }))),
    );
    expect(decisions.filter((d) => d.outcome === 'override')).toHaveLength(1);
  });

  const refusals: Array<
    [
      string,
      () => Promise<{
        env?: string;
        subject?: string;
        items: Array<{ source: string; bytes: Buffer }>;
      }>,
      string,
    ]
  > = [
    [
      'expired',
      async () => ({
        items: [
          await breakGlass('exp', ONCALL, {
            expiresInMinutes: 1,
            now: new Date(Date.now() - 5 * 60_000),
          }),
        ],
      }),
      'BREAK_GLASS_EXPIRED',
    ],
    [
      'for another subject',
      async () => ({ subject: digestOf('x'), items: [await breakGlass('subj', ONCALL)] }),
      'BREAK_GLASS_WRONG_SUBJECT',
    ],
    [
      'for another environment',
      async () => ({ env: 'dev', items: [await breakGlass('env', ONCALL)] }),
      'BREAK_GLASS_WRONG_ENVIRONMENT',
    ],
    [
      'signed by someone not allowed',
      async () => ({ items: [await breakGlass('who', STRANGER, { requester: STRANGER.san })] }),
      'BREAK_GLASS_UNAUTHORIZED',
    ],
    [
      'naming a requester other than its signer',
      async () => ({ items: [await breakGlass('name', STRANGER)] }),
      'BREAK_GLASS_UNAUTHORIZED',
    ],
    [
      'without the required co-signer',
      async () => ({ items: [await breakGlass('alone', ONCALL)] }),
      'BREAK_GLASS_APPROVALS_MISSING',
    ],
    [
      'co-signed only by the requester',
      async () => {
        const r = await breakGlass('self', ONCALL);
        return { items: [r, { ...r, source: 'again' }] };
      },
      'BREAK_GLASS_APPROVALS_MISSING',
    ],
    [
      'expiring later than allowed',
      async () => ({ items: [await breakGlass('long', ONCALL, { expiresInMinutes: 600 })] }),
      'BREAK_GLASS_EXPIRY_TOO_LONG',
    ],
    [
      'for an environment without break-glass',
      async () => ({
        env: 'staging',
        items: [await breakGlass('stg', ONCALL, { environment: 'staging' })],
      }),
      'BREAK_GLASS_NOT_CONFIGURED',
    ],
    [
      'that is not a signed bundle',
      async () => ({ items: [{ source: 'junk', bytes: Buffer.from('{"not": "a bundle"}') }] }),
      'BREAK_GLASS_INVALID',
    ],
  ];
  for (const [what, make, code] of refusals) {
    it(`refuses a request ${what} (${code}) and stays a deny`, async () => {
      const gate = await gateWith(empty);
      const { env, subject, items } = await make();
      const d = await gate.check(req(subject ?? APP, env ?? 'production', { breakGlass: items }));
      expect(d.outcome).toBe('deny');
      expect(d.allow).toBe(false);
      expect(d.override).toBeUndefined();
      expect(d.breakGlassRefused?.map((r) => r.code)).toContain(code);
    });
  }

  it('does not override a decision the gate could not make', async () => {
    const failing: Source = {
      name: 'broken',
      collect: async () => ({
        evidence: [],
        rejected: [],
        failures: [{ source: 'rekor:x', code: 'SOURCE_TIMEOUT', message: 'timed out' }],
      }),
    };
    const gate = await gateWith(empty, undefined, [failing]);
    const request = await breakGlass('err', ONCALL, { environment: 'dev' });
    const d = await gate.check(req(APP, 'dev', { breakGlass: [request] }));
    expect(d.outcome).toBe('error');
    expect(d.allow).toBe(false);
  });

  it('keeps the ledger append-only: one record per decision', async () => {
    const ledger = path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db');
    const gate = await gateWith(empty, ledger);
    await gate.check(req(APP, 'dev'));
    await gate.check(req(APP, 'dev'));
    const records = await readLedger(ledger);
    expect(records.map((r) => r.seq)).toEqual([1, 2]);
    expect(records[1]!.prevHash).toBe(records[0]!.hash);
  });
});
