import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GateError } from '../errors.js';
import { instantiate, type CompiledPolicy } from '../evaluate/policy.js';

/**
 * Policies by digest, beside the ledger: every decision names the digest of the policy it was
 * made with, and replay needs that exact policy even after the deployed one has changed.
 * Content-addressed and write-once.
 */
export function savePolicy(dir: string, policy: CompiledPolicy): void {
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

export async function loadStoredPolicy(dir: string, digest: string): Promise<CompiledPolicy> {
  const base = path.join(dir, digest);
  if (!/^[0-9a-f]{64}$/.test(digest) || !existsSync(`${base}.wasm`)) {
    throw new GateError(
      'POLICY_LOAD_FAILED',
      `policy ${digest.slice(0, 12)} is not in ${dir}: pass --policy`,
    );
  }
  const data = JSON.parse(readFileSync(`${base}.data.json`, 'utf8')) as unknown;
  const policy = await instantiate(readFileSync(`${base}.wasm`), data, `${base}.wasm`);
  if (policy.digest !== digest) {
    throw new GateError(
      'POLICY_LOAD_FAILED',
      `stored policy ${digest.slice(0, 12)} does not match its digest`,
    );
  }
  return policy;
}
