export { loadCompiledPolicy, instantiate, type CompiledPolicy } from './policy.js';
export { checkPolicyOutput, type PolicyResult, type RuleResult } from './output.js';
export { buildWasmBundle, findOpa, opaEval, ENTRYPOINT } from './opa-cli.js';
export { readWasmBundle, type WasmBundle } from './bundle.js';
export * from './input.js';
