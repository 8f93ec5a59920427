import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { GateConfig } from '../config.js';
import { GateError } from '../errors.js';

/**
 * A compiled policy as bytes: the module and the data it runs with. The store keeps and returns
 * these; whoever evaluates them (replay.ts) instantiates the WebAssembly.
 */
export interface StoredPolicy {
  /** sha256 hex of the wasm and the JSON of its data (evaluate/policy.ts): named in decisions */
  digest: string;
  wasm: Buffer;
  data: unknown;
}

/**
 * Policies by digest: every decision names the digest of the policy it was made with, and replay
 * needs that exact policy even after the deployed one has changed. Content-addressed, write-once.
 */
export interface PolicyStore {
  readonly dir: string;
  save(policy: StoredPolicy): void;
  /** POLICY_LOAD_FAILED when the digest is not stored here */
  load(digest: string): StoredPolicy;
}

/**
 * The one place that names where the policies of a ledger live: `policies/` beside the ledger
 * file (for PostgreSQL, beside its configured path), so a copy of that folder travels with it.
 */
export function policyStoreFor(ledger: Pick<GateConfig['ledger'], 'path'>): PolicyStore {
  const dir = path.join(path.dirname(ledger.path), 'policies');
  return {
    dir,
    save: (policy) => savePolicy(dir, policy),
    load: (digest) => loadPolicy(dir, digest),
  };
}

export function savePolicy(dir: string, policy: StoredPolicy): void {
  const base = path.join(dir, policy.digest);
  if (existsSync(`${base}.wasm`)) return;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${base}.data.json`, JSON.stringify(policy.data ?? {}));
    // the .wasm appears last and atomically: its presence means the pair is complete
    writeFileSync(`${base}.wasm.tmp`, policy.wasm);
    renameSync(`${base}.wasm.tmp`, `${base}.wasm`);
  } catch (err) {
    throw new GateError(
      'LEDGER_UNAVAILABLE',
      `cannot store policy ${policy.digest.slice(0, 12)} in ${dir}`,
      { cause: err },
    );
  }
}

function loadPolicy(dir: string, digest: string): StoredPolicy {
  const base = path.join(dir, digest);
  // the digest comes from a record (or a caller): only a digest names a file here
  if (!/^[0-9a-f]{64}$/.test(digest) || !existsSync(`${base}.wasm`)) {
    throw new GateError(
      'POLICY_LOAD_FAILED',
      `policy ${digest.slice(0, 12) || '(none recorded)'} is not in ${dir}`,
    );
  }
  try {
    const data = JSON.parse(readFileSync(`${base}.data.json`, 'utf8')) as unknown;
    return { digest, wasm: readFileSync(`${base}.wasm`), data };
  } catch (err) {
    throw new GateError(
      'POLICY_LOAD_FAILED',
      `stored policy ${digest.slice(0, 12)} cannot be read: ${(err as Error).message.toLowerCase()}`,
      { cause: err },
    );
  }
}
