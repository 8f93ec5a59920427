import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { PolicyError } from '../errors.js';
import { readBoundedFile } from '../util/input.js';
import { jsonText } from '../util/json-text.js';
import { packagePath } from '../util/paths.js';
import { GATE_BUILTINS } from './builtins.js';
import { readWasmBundle, type WasmBundle } from './bundle.js';
import { buildWasmBundle, ENTRYPOINT } from './opa-cli.js';
import { checkPolicyOutput, type PolicyResult } from './output.js';
import { normaliseKeyIds } from '../verify/key-id.js';

/**
 * Builtins a policy may import from the host: those @open-policy-agent/opa-wasm 1.10 implements
 * in JavaScript (src/builtins/) and the gate's own (./builtins.ts).
 */
const JS_BUILTINS = new Set([
  'sprintf',
  'json.is_valid',
  'regex.split',
  'yaml.is_valid',
  'yaml.marshal',
  'yaml.unmarshal',
  ...Object.keys(GATE_BUILTINS),
]);

/** The default library, compiled by `make policies`. */
export const DEFAULT_POLICY_PATH = packagePath('dist', 'policy', 'bundle.tar.gz');

/** A compiled policy, loaded once and evaluated many times. */
export interface CompiledPolicy {
  /** sha256 hex of policy.wasm and the data it was given: recorded in every decision */
  digest: string;
  source: string;
  /** the compiled module and its data, kept so the ledger can store the policy for replay */
  wasm: Buffer;
  data: unknown;
  evaluate(input: unknown): PolicyResult;
}

/**
 * Loads a policy from what a user can point --policy at: an `opa build -t wasm` bundle
 * (.tar.gz), a policy.wasm (with data.json beside it when present), or a directory of Rego
 * sources, built here with the real opa.
 */
export async function loadCompiledPolicy(source: string, data?: unknown): Promise<CompiledPolicy> {
  const bundle = await readPolicySource(source);
  // Keys in policy data may be named in either id form; rules compare the reported one.
  return instantiate(bundle.wasm, normaliseKeyIds(data ?? bundle.data), source);
}

async function readPolicySource(source: string): Promise<WasmBundle> {
  if (!existsSync(source))
    throw new PolicyError('POLICY_LOAD_FAILED', `policy ${source} does not exist`);
  if (statSync(source).isDirectory()) {
    const built = path.join(source, 'bundle.tar.gz');
    return readWasmBundle(existsSync(built) ? readFileSync(built) : await buildWasmBundle(source));
  }
  const bytes = readBoundedFile(source, 64 * 1024 * 1024, 'policy');
  if (bytes.subarray(0, 4).equals(Buffer.from([0, 0x61, 0x73, 0x6d]))) {
    const dataFile = path.join(path.dirname(source), 'data.json');
    const data = existsSync(dataFile) ? JSON.parse(readFileSync(dataFile, 'utf8')) : {};
    return { wasm: bytes, data };
  }
  return readWasmBundle(bytes);
}

// opa-wasm's ECMAScript entry exports loadPolicy alone; loadPolicySync is in its CommonJS one.
const { loadPolicySync } = createRequire(import.meta.url)(
  '@open-policy-agent/opa-wasm',
) as typeof import('@open-policy-agent/opa-wasm');

/** WebAssembly.compile (the compiler's libraries here declare no WebAssembly global). */
type WasmModule = Parameters<typeof loadPolicySync>[0];
const compileWasm = (bytes: Uint8Array): Promise<WasmModule> =>
  (
    globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<WasmModule> } }
  ).WebAssembly.compile(bytes);

export async function instantiate(
  wasm: Buffer,
  data: unknown,
  source: string,
): Promise<CompiledPolicy> {
  let policy: LoadedPolicy;
  try {
    // Compiled (off this thread), then instantiated: opa-wasm's async loadPolicy first asks whether
    // it was handed a fetch Response, and that first look at the global loads Node's whole fetch
    // implementation, tens of milliseconds of a cold start (issue 11). Same module, same instance.
    const compiled = await compileWasm(wasm);
    policy = loadPolicySync(compiled, { initial: 16, maximum: 4096 }, { ...GATE_BUILTINS });
  } catch (err) {
    throw new PolicyError('POLICY_LOAD_FAILED', `policy ${source} cannot be loaded: ${text(err)}`, {
      cause: err,
    });
  }
  if (!Object.prototype.hasOwnProperty.call(policy.entrypoints, ENTRYPOINT)) {
    throw new PolicyError('POLICY_LOAD_FAILED', `policy ${source} has no ${ENTRYPOINT} entrypoint`);
  }
  const missing = requiredBuiltins(policy).filter((b) => !JS_BUILTINS.has(b));
  if (missing.length > 0) {
    // opa-wasm would only fail when the rule runs; refuse up front so no path can silently deny
    // (or worse) depending on the input.
    throw new PolicyError(
      'POLICY_LOAD_FAILED',
      `policy ${source} needs builtins the wasm runtime lacks: ${missing.join(', ')}`,
    );
  }
  try {
    policy.setData(data as object);
  } catch (err) {
    throw new PolicyError('POLICY_LOAD_FAILED', `policy data cannot be loaded: ${text(err)}`, {
      cause: err,
    });
  }
  const digest = createHash('sha256').update(wasm).update(JSON.stringify(data)).digest('hex');
  return { digest, source, wasm, data, evaluate: (input) => evaluateOnce(policy, input) };
}

const textEncoder = new TextEncoder();

/** The UTF-8 bytes of `text` in an ArrayBuffer of exactly their length. */
function textBuffer(text: string): ArrayBuffer {
  const bytes = textEncoder.encode(text);
  return bytes.byteLength === bytes.buffer.byteLength
    ? (bytes.buffer as ArrayBuffer)
    : (bytes.slice().buffer as ArrayBuffer);
}

function evaluateOnce(policy: LoadedPolicy, input: unknown): PolicyResult {
  let resultSet: unknown;
  // Rego print() goes to console.log inside opa-wasm; keep stdout for the decision.
  const log = console.log;
  console.log = (...args: unknown[]) => process.stderr.write(`policy: ${args.join(' ')}\n`);
  try {
    // opa-wasm takes JSON text as an ArrayBuffer: the input's text, made once (json-text.ts)
    resultSet =
      input !== null && typeof input === 'object'
        ? policy.evaluate(textBuffer(jsonText(input)), ENTRYPOINT)
        : policy.evaluate(input, ENTRYPOINT);
  } catch (err) {
    throw new PolicyError('POLICY_EVAL_FAILED', `policy evaluation failed: ${text(err)}`, {
      cause: err,
    });
  } finally {
    console.log = log;
  }
  if (
    !Array.isArray(resultSet) ||
    resultSet.length === 0 ||
    !('result' in (resultSet[0] as object))
  ) {
    throw new PolicyError('POLICY_UNDEFINED', `policy ${ENTRYPOINT} is undefined for this input`);
  }
  return checkPolicyOutput((resultSet[0] as { result: unknown }).result);
}

/** The builtins a compiled policy imports from its host, read from the module's own table. */
function requiredBuiltins(policy: LoadedPolicy): string[] {
  const exports = (policy.wasmInstance as unknown as { exports: Record<string, unknown> }).exports;
  const builtins = exports.builtins as () => number;
  const dump = exports.opa_json_dump as (addr: number) => number;
  const mem = new Uint8Array((policy.mem as unknown as { buffer: ArrayBuffer }).buffer);
  const at = dump(builtins());
  const end = mem.indexOf(0, at);
  return Object.keys(JSON.parse(Buffer.from(mem.subarray(at, end)).toString('utf8')) as object);
}

/** opa-wasm throws strings and plain objects as well as Errors. */
function text(err: unknown): string {
  if (typeof err === 'string') return err.toLowerCase();
  if (err instanceof Error) return err.message.toLowerCase();
  if (err && typeof err === 'object' && 'message' in err)
    return String((err as { message: unknown }).message).toLowerCase();
  return String(err);
}
