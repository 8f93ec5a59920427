import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import type { Source } from '../../src/collect/types.js';
import type { Decision } from '../../src/decision.js';
import type { Gate } from '../../src/gate.js';
import { mintDSSEBundle, type KeylessIdentity } from '../support/mint.js';
import { mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { gateOver, hex, REQUIRES_PROVENANCE, requestFor, tmp } from './gate-support.js';
import { reportAttack } from './report.js';

/**
 * Attack corpus: break glass. Every way a request is refused (its code in the decision's
 * breakGlassRefused) leaves the deny a deny; a forged co-signer (one key signing twice, the second
 * labelled with the approver's hint: the earlier attack pass) approves nothing; a decision the
 * gate could not make is never overridden.
 */
const APP = hex('break-glass attack app');
const ONCALL: KeylessIdentity = { san: 'oncall@acme.example', issuer: 'https://accounts.example' };
const APPROVER: KeylessIdentity = { san: 'lead@acme.example', issuer: 'https://accounts.example' };
const STRANGER: KeylessIdentity = {
  san: 'mallory@evil.example',
  issuer: 'https://accounts.example',
};

let svc: LocalSigstore;
const gates: Gate[] = [];

const RULES = {
  production: {
    requesters: [{ san: ONCALL.san, issuer: ONCALL.issuer }],
    approvers: [{ san: APPROVER.san, issuer: APPROVER.issuer }],
    approvals: 1,
    max_expiry_minutes: 120,
    reuse: 'single',
  },
  dev: { requesters: [{ san: ONCALL.san, issuer: ONCALL.issuer }], max_expiry_minutes: 120 },
};

beforeAll(async () => {
  svc = await startLocalSigstore();
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await svc?.close();
});

async function gateWith(
  o: { sources?: Source[]; doc?: Record<string, unknown>; rules?: object } = {},
) {
  const g = await gateOver(svc, {
    evidence: [],
    ...(o.sources ? { sources: o.sources } : {}),
    doc: {
      policy: {
        path: REQUIRES_PROVENANCE,
        config: { break_glass: { environments: o.rules ?? RULES } },
      },
      ...o.doc,
    },
  });
  gates.push(g);
  return g;
}

let n = 0;
const statementOf = (over: Partial<Parameters<typeof breakGlassStatement>[0]> = {}) =>
  breakGlassStatement({
    subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
    environment: 'production',
    justification: 'customer outage, fix must ship now',
    ticket: 'INC-42',
    requester: ONCALL.san,
    expiresInMinutes: 60,
    now: new Date(),
    requestId: `req-attack-${n++}`,
    ...over,
  });

async function signedBy(identity: KeylessIdentity, statement: object) {
  const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless', identity });
  return { source: `signed-by:${identity.san}`, bytes: Buffer.from(JSON.stringify(m.bundle)) };
}

/** The decision stays a deny, with this refusal code; recorded for the report. */
function expectRefusal(name: string, d: Decision, code: string) {
  const codes = d.breakGlassRefused?.map((r) => r.code) ?? [];
  reportAttack(`break glass: ${name}`, undefined, d.outcome, codes.join(','));
  expect(d.outcome).toBe('deny');
  expect(d.allow).toBe(false);
  expect(d.override).toBeUndefined();
  expect(codes).toContain(code);
}

describe('every break-glass refusal keeps the deny', () => {
  it('the baseline: a request with its co-signer overrides, once', async () => {
    const g = await gateWith();
    const statement = statementOf();
    const items = [await signedBy(ONCALL, statement), await signedBy(APPROVER, statement)];
    expect((await g.check(requestFor(APP, 'production', { breakGlass: items }))).outcome).toBe(
      'override',
    );
    // replayed: BREAK_GLASS_REPLAYED
    expectRefusal(
      'replayed',
      await g.check(requestFor(APP, 'production', { breakGlass: items })),
      'BREAK_GLASS_REPLAYED',
    );
  });

  const cases: Array<
    [
      string,
      string,
      () => Promise<{
        env?: string;
        subject?: string;
        items: Array<{ source: string; bytes: Buffer }>;
      }>,
    ]
  > = [
    [
      'expired',
      'BREAK_GLASS_EXPIRED',
      async () => ({
        items: [
          await signedBy(
            ONCALL,
            statementOf({ expiresInMinutes: 1, now: new Date(Date.now() - 5 * 60_000) }),
          ),
        ],
      }),
    ],
    [
      'for another subject',
      'BREAK_GLASS_WRONG_SUBJECT',
      async () => ({ subject: hex('elsewhere'), items: [await signedBy(ONCALL, statementOf())] }),
    ],
    [
      'naming one artifact of a release set',
      'BREAK_GLASS_WRONG_SUBJECT',
      async () => ({ subject: 'set', items: [await signedBy(ONCALL, statementOf())] }),
    ],
    [
      'for another environment',
      'BREAK_GLASS_WRONG_ENVIRONMENT',
      async () => ({ env: 'dev', items: [await signedBy(ONCALL, statementOf())] }),
    ],
    [
      'signed by someone not allowed',
      'BREAK_GLASS_UNAUTHORIZED',
      async () => ({ items: [await signedBy(STRANGER, statementOf({ requester: STRANGER.san }))] }),
    ],
    [
      'naming a requester other than its signer',
      'BREAK_GLASS_UNAUTHORIZED',
      async () => ({ items: [await signedBy(STRANGER, statementOf())] }),
    ],
    [
      'without the required co-signer',
      'BREAK_GLASS_APPROVALS_MISSING',
      async () => ({ items: [await signedBy(ONCALL, statementOf())] }),
    ],
    [
      'co-signed only by the requester again',
      'BREAK_GLASS_APPROVALS_MISSING',
      async () => {
        const r = await signedBy(ONCALL, statementOf());
        return { items: [r, { ...r, source: 'again' }] };
      },
    ],
    [
      'co-signed by a stranger',
      'BREAK_GLASS_APPROVALS_MISSING',
      async () => {
        const s = statementOf();
        return { items: [await signedBy(ONCALL, s), await signedBy(STRANGER, s)] };
      },
    ],
    [
      'co-signature over a different statement',
      'BREAK_GLASS_INVALID',
      async () => {
        const s = statementOf();
        return {
          items: [
            await signedBy(ONCALL, s),
            await signedBy(APPROVER, { ...s, predicate: { ...s.predicate, ticket: 'INC-43' } }),
          ],
        };
      },
    ],
    [
      'expiring later than allowed',
      'BREAK_GLASS_EXPIRY_TOO_LONG',
      async () => ({ items: [await signedBy(ONCALL, statementOf({ expiresInMinutes: 600 }))] }),
    ],
    [
      'for an environment without break glass',
      'BREAK_GLASS_NOT_CONFIGURED',
      async () => ({
        env: 'staging',
        items: [await signedBy(ONCALL, statementOf({ environment: 'staging' }))],
      }),
    ],
    [
      'that is not a signed bundle',
      'BREAK_GLASS_INVALID',
      async () => ({ items: [{ source: 'junk', bytes: Buffer.from('{"not": "a bundle"}') }] }),
    ],
    [
      'whose signature does not verify',
      'BREAK_GLASS_INVALID',
      async () => {
        const r = await signedBy(ONCALL, statementOf());
        const b = mutate(
          JSON.parse(r.bytes.toString()),
          'dsseEnvelope.signatures.0.sig',
          () => 'AAAA',
        );
        return { items: [{ source: 'broken', bytes: Buffer.from(JSON.stringify(b)) }] };
      },
    ],
    [
      'of another predicate type',
      'BREAK_GLASS_INVALID',
      async () => ({
        items: [
          await signedBy(ONCALL, {
            ...statementOf(),
            predicateType: 'https://slsa.dev/provenance/v1',
          }),
        ],
      }),
    ],
  ];
  for (const [what, code, make] of cases) {
    it(`refuses a request ${what} (${code})`, async () => {
      const g = await gateWith();
      const { env, subject, items } = await make();
      const subjects = subject === 'set' ? [APP, hex('second component')] : [subject ?? APP];
      const d = await g.check({
        subjects: subjects.map((h) => ({ digest: { algorithm: 'sha256', hex: h } })),
        environment: env ?? 'production',
        breakGlass: items,
      });
      expectRefusal(what, d, code);
    });
  }

  it('refuses a request with no verified signing time (BREAK_GLASS_UNTIMED, or refused before)', async () => {
    // key-signed, its log entry stripped of the promise that timestamps it, no rfc 3161 timestamp
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dir = tmp('bg-key');
    const pem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }).toString();
    writeFileSync(path.join(dir, 'oncall.pub'), pem);
    const id = keyIdOf(key.privateKey);
    const g = await gateWith({
      doc: { keys: [{ path: path.join(dir, 'oncall.pub') }] },
      rules: { production: { requesters: [{ key_id: id }], max_expiry_minutes: 120 } },
    });
    const m = await mintDSSEBundle(svc, {
      statement: statementOf({ requester: id }),
      version: '0.3',
      signer: 'key',
      privateKey: key.privateKey,
    });
    const untimed = mutate(
      mutate(m.bundle, 'verificationMaterial.tlogEntries.0.inclusionPromise', () => undefined),
      'verificationMaterial.tlogEntries.0.logIndex',
      () => '0',
    );
    const d = await g.check(
      requestFor(APP, 'production', {
        breakGlass: [{ source: 'untimed', bytes: Buffer.from(JSON.stringify(untimed)) }],
      }),
    );
    // the verifier already demands a verified time of every signature: the request is refused as
    // invalid (TIMESTAMP_INVALID) before the break-glass rules would call it untimed
    expectRefusal('with no verified signing time', d, 'BREAK_GLASS_INVALID');
    expect(d.breakGlassRefused![0]!.message).toMatch(/^TIMESTAMP_INVALID/);
  });

  it('refuses a request signed by a key that may sign without a log: it has no time (BREAK_GLASS_UNTIMED)', async () => {
    // the key is declared transparency: optional, so its unlogged bundle verifies as evidence;
    // an override still needs a verified signing time for its expiry
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dir = tmp('bg-untimed');
    const pem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }).toString();
    writeFileSync(path.join(dir, 'oncall.pub'), pem);
    const id = keyIdOf(key.privateKey);
    const g = await gateWith({
      doc: { keys: [{ path: path.join(dir, 'oncall.pub'), transparency: 'optional' }] },
      rules: { production: { requesters: [{ key_id: id }], max_expiry_minutes: 120 } },
    });
    const m = await mintDSSEBundle(svc, {
      statement: statementOf({ requester: id }),
      version: '0.3',
      signer: 'key',
      privateKey: key.privateKey,
      tlog: false,
    });
    const d = await g.check(
      requestFor(APP, 'production', {
        breakGlass: [{ source: 'unlogged', bytes: Buffer.from(JSON.stringify(m.bundle)) }],
      }),
    );
    expectRefusal('signed without a log or timestamp', d, 'BREAK_GLASS_UNTIMED');
  });
});

function keyIdOf(privateKey: KeyObject): string {
  const der = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('base64');
}

describe('forged co-signers (the earlier attack pass)', () => {
  it('one key signing twice, the second labelled with the approver key hint, approves nothing', async () => {
    const requester = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const approver = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dir = tmp('bg-forge');
    const [rid, aid] = [keyIdOf(requester.privateKey), keyIdOf(approver.privateKey)];
    for (const [name, k] of [
      ['requester', requester],
      ['approver', approver],
    ] as const)
      writeFileSync(
        path.join(dir, `${name}.pub`),
        createPublicKey(k.privateKey).export({ format: 'pem', type: 'spki' }),
      );
    const g = await gateWith({
      doc: {
        keys: [{ path: path.join(dir, 'requester.pub') }, { path: path.join(dir, 'approver.pub') }],
      },
      rules: {
        production: {
          requesters: [{ key_id: rid }],
          approvers: [{ key_id: aid }],
          approvals: 1,
          max_expiry_minutes: 120,
        },
      },
    });
    const statement = statementOf({ requester: rid });
    const sign = async (keyHint: string) => {
      const m = await mintDSSEBundle(svc, {
        statement,
        version: '0.3',
        signer: 'key',
        privateKey: requester.privateKey,
        keyHint,
      });
      return { source: `hint:${keyHint}`, bytes: Buffer.from(JSON.stringify(m.bundle)) };
    };
    const hexHint = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
    const d = await g.check(
      requestFor(APP, 'production', {
        breakGlass: [await sign(hexHint(rid)), await sign(hexHint(aid))],
      }),
    );
    expectRefusal('forged co-signer (same key, approver hint)', d, 'BREAK_GLASS_APPROVALS_MISSING');
  });
});

describe('a decision the gate could not make', () => {
  it('is never overridden: a valid request on a failed source stays could-not-decide', async () => {
    const failing: Source = {
      name: 'failing',
      collect: async () => ({
        evidence: [],
        rejected: [],
        failures: [{ source: 'failing', code: 'SOURCE_TIMEOUT', message: 'timed out' }],
      }),
    };
    const g = await gateWith({ sources: [failing] });
    const statement = statementOf({ environment: 'dev' });
    const d = await g.check(
      requestFor(APP, 'dev', { breakGlass: [await signedBy(ONCALL, statement)] }),
    );
    reportAttack('break glass over a could-not-decide', undefined, d.outcome, d.error?.code);
    expect(d.outcome).toBe('error');
    expect(d.error?.code).toBe('SOURCE_TIMEOUT');
    expect(d.override).toBeUndefined();
  });
});
