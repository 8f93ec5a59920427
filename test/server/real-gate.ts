import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Evidence, Source } from '../../src/collect/types.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { normalise } from '../../src/config.js';
import { createGate, type Gate } from '../../src/gate.js';
import { trustFromJSON } from '../../src/verify/trust.js';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * A real gate for the server tests: the compiled default policy (dist/policy/bundle.tar.gz,
 * `make policies`), bundles minted by the local Sigstore services, the SQLite ledger in a temp
 * dir. The dev environment is narrowed to the provenance rules so one minted attestation is
 * enough for an allow, and its absence is a deny.
 */
const BUILDER = 'https://gate-test.example/builder/v1';

export const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');

export interface RealGate {
  gate: Gate;
  ledgerPath: string;
  /** whether the ledger holds this decision (read through a second connection) */
  recorded(id: string): Promise<boolean>;
  /** a digest with trusted provenance: allowed in dev */
  allowed: string;
  /** a digest with no evidence: denied in dev */
  denied: string;
  /** a digest whose (required) source is down: could not decide */
  unreachable: string;
  /** a digest whose source never answers, not even when the decision's deadline passes */
  hanging: string;
  /** the public key (PEM) of the gate's verification summaries */
  summaryKeyPem: string;
  close(): Promise<void>;
}

export async function startRealGate(): Promise<RealGate> {
  const svc = await startLocalSigstore();
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-server-'));
  const ledgerPath = path.join(dir, 'ledger.db');
  const allowed = hex('allowed');
  const evidence = [await provenance(svc, allowed)];
  const unreachable = hex('unreachable');
  const hanging = hex('hanging');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(path.join(dir, 'vsa.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const config = normalise(
    { ledger: { path: ledgerPath }, policy: { config: policyConfig() }, vsa: { key: 'vsa.key' } },
    dir,
    hex('config'),
  );
  const gate = await createGate(config, {
    trust: trustFromJSON(svc.trustedRoot, 'test', 'local'),
    sources: () => [memorySource(evidence, unreachable, hanging)],
  });
  return {
    gate,
    ledgerPath,
    async recorded(id) {
      const ledger = createSqliteLedger({ path: ledgerPath });
      try {
        return (await ledger.get(id)) !== undefined;
      } finally {
        await ledger.close();
      }
    },
    allowed,
    denied: hex('denied'),
    unreachable,
    hanging,
    summaryKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    async close() {
      await gate.close();
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function policyConfig() {
  return {
    trusted_builders: [
      { id: BUILDER, identities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }] },
    ],
    vsa: { verifier_id: 'https://gate-test.example/gate' },
    environments: {
      dev: {
        required_rules: ['provenance.present', 'provenance.trusted_builder', 'provenance.signer'],
      },
    },
  };
}

async function provenance(svc: LocalSigstore, digest: string): Promise<Evidence> {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app', digest: { sha256: digest } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: { buildType: 'https://gate-test.example/build/v1' },
      runDetails: { builder: { id: BUILDER } },
    },
  };
  const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless' });
  const bytes = Buffer.from(JSON.stringify(m.bundle));
  return { id: hex(bytes.toString()), source: 'memory:provenance', kind: 'bundle', bytes };
}

/**
 * Every bundle for every subject (the gate matches subjects); one digest's source is "down", and
 * one's hangs, ignoring the decision's abort signal, as a misbehaving source would.
 */
function memorySource(evidence: Evidence[], unreachable: string, hanging: string): Source {
  return {
    name: 'memory',
    async collect({ subject }) {
      if (subject.hex === hanging) return new Promise<never>(() => {});
      if (subject.hex === unreachable) {
        const failure = {
          source: 'memory',
          code: 'SOURCE_UNREACHABLE' as const,
          message: 'connection refused',
        };
        return { evidence: [], rejected: [], failures: [failure] };
      }
      return { evidence, rejected: [], failures: [] };
    },
  };
}
