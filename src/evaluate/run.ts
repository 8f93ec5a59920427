import { readFileSync } from 'node:fs';
import { mergeData } from '../config.js';
import { toGateError, type GateError } from '../errors.js';
import { readWasmBundle } from './bundle.js';
import { checkPolicyInput, type PolicyInput } from './input.js';
import type { PolicyResult } from './output.js';
import { DEFAULT_POLICY_PATH, loadCompiledPolicy, type CompiledPolicy } from './policy.js';

/** Which policy, and the user's configuration data for it (data.gate.config). */
export interface PolicyOptions {
  /** a Rego folder, an opa wasm bundle or a policy.wasm; default: the built-in library */
  path?: string;
  config: Record<string, unknown>;
}

/**
 * Loads the configured policy once. The user's config is merged over the library's defaults
 * (data.json in the bundle); the merged data is also what break-glass rules are read from.
 */
export async function loadConfiguredPolicy(
  o: PolicyOptions,
): Promise<{ policy: CompiledPolicy; data: unknown }> {
  const source = o.path ?? DEFAULT_POLICY_PATH;
  const defaults = o.path ? undefined : readWasmBundle(readFileSync(DEFAULT_POLICY_PATH)).data;
  const data = Object.keys(o.config).length
    ? mergeData(defaults ?? {}, { gate: { config: o.config } })
    : defaults;
  return { policy: await loadCompiledPolicy(source, data), data };
}

/** The evaluate step: an input the schema refuses, a trap or an undefined result is an error. */
export function evaluateInput(
  policy: CompiledPolicy,
  input: PolicyInput,
): PolicyResult | GateError {
  try {
    checkPolicyInput(input);
    return policy.evaluate(input);
  } catch (err) {
    return toGateError(err, 'POLICY_EVAL_FAILED');
  }
}
