import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence, Source } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import { createGate, type Gate } from '../../src/gate.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { VerifiedBundle } from '../../src/verify/types.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import { jsonPaths, replaceAt } from './cases.js';
import { flipBase64, mutation } from './mutate.js';

/**
 * Whole decisions on a real gate (the compiled default policy, make policies; the SQLite ledger;
 * bundles minted by the local Sigstore services): the unchanged provenance is allowed; changed
 * anywhere (its JSON, its bytes, the statement inside it) it is allowed only if it still verifies
 * as exactly the same statement by the same signer; provenance about another artifact, changed
 * to name this one, is never allowed.
 */
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const ALLOWED = hex('allowed');
const OTHER = hex('other');
const BUILDER = 'https://gate-fuzz.example/builder/v1';

let svc: LocalSigstore;
let gate: Gate;
let trust: Trust;
let dir: string;
let evidence: Evidence[] = [];
let seed: { json: Record<string, any>; verified: VerifiedBundle };
let other: Record<string, any>;

const source: Source = {
  name: 'fuzz',
  async collect() {
    return { evidence, rejected: [], failures: [] };
  },
};

const statement = (digest: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: digest } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://gate-fuzz.example/build/v1' },
    runDetails: { builder: { id: BUILDER } },
  },
});

beforeAll(async () => {
  svc = await startLocalSigstore();
  dir = mkdtempSync(path.join(tmpdir(), 'gate-fuzz-decision-'));
  trust = trustFromJSON(svc.trustedRoot, 'fuzz', 'local');
  const config = normalise(
    {
      ledger: { path: path.join(dir, 'ledger.db') },
      policy: {
        config: {
          trusted_builders: [
            {
              id: BUILDER,
              identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
            },
          ],
          environments: {
            dev: {
              required_rules: [
                'provenance.present',
                'provenance.trusted_builder',
                'provenance.signer',
              ],
            },
          },
        },
      },
      verifyCache: { maxEntries: 0 },
    },
    dir,
    hex('config'),
  );
  gate = await createGate(config, { trust, sources: () => [source] });
  const minted = await mintDSSEBundle(svc, {
    statement: statement(ALLOWED),
    version: '0.3',
    signer: 'keyless',
  });
  const json = minted.bundle as unknown as Record<string, any>;
  seed = { json, verified: verifyAny(Buffer.from(JSON.stringify(json))) };
  other = (
    await mintDSSEBundle(svc, { statement: statement(OTHER), version: '0.3', signer: 'keyless' })
  ).bundle as unknown as Record<string, any>;
}, 120_000);

afterAll(async () => {
  await gate?.close();
  await svc?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function verifyAny(bytes: Buffer): VerifiedBundle {
  return verifyBundle(bytes, { trust, identities: 'any' });
}

/** Decides on ALLOWED with these bytes as the only evidence. */
async function decide(bytes: Buffer, kind: Evidence['kind'] = 'bundle') {
  evidence = [{ id: hex(bytes.toString('latin1')), source: 'fuzz:evidence', kind, bytes }];
  const d = await gate.check({
    subjects: [{ digest: { algorithm: 'sha256', hex: ALLOWED } }],
    environment: 'dev',
  });
  expect(['allow', 'deny', 'error']).toContain(d.outcome);
  return d;
}

/** Allowed only if the bytes verify as exactly the seed's statement by the seed's signer. */
async function allowedOnlyIfSame(bytes: Buffer, kind: Evidence['kind'] = 'bundle') {
  const d = await decide(bytes, kind);
  if (d.outcome !== 'allow') return;
  const v = coded(() => verifyAny(bytes));
  expect(v.ok, 'allowed on evidence that does not verify').toBe(true);
  if (!v.ok) return;
  expect(v.value.signer).toEqual(seed.verified.signer);
  expect(v.value.payload?.equals(seed.verified.payload!)).toBe(true);
  expect(v.value.payloadType).toBe(seed.verified.payloadType);
}

const N = runs(0.5);
const text = (v: unknown) => Buffer.from(JSON.stringify(v));

/** The statement inside an envelope, changed and re-encoded (the signature left as it was). */
function withStatement(bundle: Record<string, any>, edit: (s: any) => void) {
  const s = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
  edit(s);
  return replaceAt(bundle, ['dsseEnvelope', 'payload'], () =>
    Buffer.from(JSON.stringify(s)).toString('base64'),
  );
}

describe('decisions on changed evidence', () => {
  it('the minted provenance is allowed, provenance about another artifact is not', async () => {
    expect((await decide(text(seed.json))).outcome).toBe('allow');
    expect((await decide(text(other))).outcome).toBe('deny');
  });

  it(
    'any field, byte or statement change: allowed only as the same statement by the same signer',
    async () => {
      const change = fc.oneof(
        fc
          .tuple(fc.constantFrom(...jsonPaths(seed.json)), mutation)
          .map(([p, m]) => ({ bytes: text(replaceAt(seed.json, p, m)) })),
        fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
          const b = text(seed.json);
          b[at % b.length] = b[at % b.length]! ^ xor;
          return { bytes: b };
        }),
        fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => ({
          bytes: text(
            replaceAt(seed.json, ['dsseEnvelope', 'signatures', 0, 'sig'], (s) =>
              flipBase64(s as string, at, xor),
            ),
          ),
        })),
        fc
          .constantFrom<(s: any) => void>(
            (s) => (s.predicate.runDetails.builder.id = `${BUILDER}/x`),
            (s) => (s.subject[0].digest.sha256 = OTHER),
            (s) => s.subject.push({ digest: { sha256: OTHER } }),
            (s) => (s.predicateType = 'https://slsa.dev/provenance/v0.2'),
          )
          .map((edit) => ({ bytes: text(withStatement(seed.json, edit)) })),
        fc.constant({
          bytes: Buffer.from(seed.json.dsseEnvelope ? JSON.stringify(seed.json.dsseEnvelope) : ''),
          kind: 'dsse-envelope' as const,
        }),
      );
      await checkProperty(
        'decision.changed-evidence',
        fc.asyncProperty(change, async (c) => {
          await allowedOnlyIfSame(c.bytes, 'kind' in c ? c.kind : 'bundle');
        }),
        { numRuns: N, timeout: 20_000 },
      );
    },
    timeoutFor(N, 100),
  );

  it(
    "another artifact's provenance, changed to name this one, is never allowed",
    async () => {
      const paths = jsonPaths(other);
      await checkProperty(
        'decision.other-artifact',
        fc.asyncProperty(
          fc.oneof(
            fc.constant((b: Record<string, any>) =>
              withStatement(b, (s) => (s.subject[0].digest.sha256 = ALLOWED)),
            ),
            fc.constant((b: Record<string, any>) =>
              withStatement(b, (s) => s.subject.push({ digest: { sha256: ALLOWED } })),
            ),
            fc.tuple(fc.constantFrom(...paths), mutation).map(
              ([p, m]) =>
                (b: Record<string, any>) =>
                  replaceAt(b, p, m),
            ),
          ),
          async (edit) => {
            const d = await decide(text(edit(other)));
            expect(d.outcome).not.toBe('allow');
            expect(d.allow).toBe(false);
          },
        ),
        { numRuns: N, timeout: 20_000 },
      );
    },
    timeoutFor(N, 100),
  );
});
