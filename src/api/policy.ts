// Policies, one part of the public API (src/index.ts exports it all): load a compiled policy and
// evaluate an input yourself (`gate evaluate`).
export {
  loadCompiledPolicy,
  DEFAULT_POLICY_PATH,
  type CompiledPolicy,
} from '../evaluate/policy.js';
export { checkPolicyInput, type PolicyInput } from '../evaluate/input.js';
export type { PolicyResult, RuleResult } from '../evaluate/output.js';
