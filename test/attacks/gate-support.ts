import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Evidence, Source } from '../../src/collect/types.js';
import { normalise } from '../../src/config.js';
import { createGate, type CheckRequest, type Gate, type GateDeps } from '../../src/gate.js';
import { FIXTURES } from '../helpers.js';
import type { LocalSigstore } from '../support/sigstore-services.js';

/** Shared by the attack files: a real gate over in-memory evidence and a small real policy. */
export const hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
export const PROVENANCE = 'https://slsa.dev/provenance/v1';
export const REQUIRES_PROVENANCE = path.join(FIXTURES, 'policies', 'requires-provenance');

export const statementAbout = (
  digests: string[],
  predicateType = PROVENANCE,
  predicate: object = { buildDefinition: { buildType: 'https://example.com/build/v1' } },
) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: digests.map((d, i) => ({ name: `artifact-${i}`, digest: { sha256: d } })),
  predicateType,
  predicate,
});

export const bytesOf = (bundle: unknown): Buffer => Buffer.from(JSON.stringify(bundle));
export const evidenceOf = (bytes: Buffer, n = 0): Evidence => ({
  id: hex(bytes),
  source: `memory:${n}`,
  kind: 'bundle',
  bytes,
});
export const memory = (evidence: Evidence[]): Source => ({
  name: 'memory',
  collect: async () => ({ evidence, rejected: [], failures: [] }),
});

export const tmp = (prefix: string): string =>
  mkdtempSync(path.join(tmpdir(), `gate-attack-${prefix}-`));

export interface GateOptions {
  /** evidence served by the one in-memory source, or the sources themselves */
  evidence?: Evidence[];
  sources?: Source[];
  /** the sources of the configuration (doc.sources), wired by createGate itself */
  configuredSources?: boolean;
  /** the trusted root (default: svc's) */
  root?: object;
  /** more configuration (identities, keys, policy, ledger...) */
  doc?: Record<string, unknown>;
  deps?: GateDeps;
}

/** A real gate: the configuration through normalise(), the ledger a fresh SQLite file. */
export async function gateOver(svc: LocalSigstore, o: GateOptions = {}): Promise<Gate> {
  const dir = tmp('gate');
  const rootFile = path.join(dir, 'root.json');
  writeFileSync(rootFile, JSON.stringify(o.root ?? svc.trustedRoot));
  const config = normalise(
    {
      trustedRoot: rootFile,
      policy: { path: REQUIRES_PROVENANCE },
      ledger: { path: path.join(dir, 'ledger.db') },
      ...o.doc,
    },
    dir,
    'attack-config',
  );
  return createGate(config, {
    ...(o.configuredSources ? {} : { sources: () => o.sources ?? [memory(o.evidence ?? [])] }),
    ...o.deps,
  });
}

export const requestFor = (
  digest: string,
  environment = 'production',
  extra: Partial<CheckRequest> = {},
): CheckRequest => ({
  subjects: [{ digest: { algorithm: 'sha256', hex: digest } }],
  environment,
  ...extra,
});
