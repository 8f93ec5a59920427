import path from 'node:path';
import { parseJSON, readBoundedFile } from '../../util/input.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import {
  checkPolicyInput,
  type PolicyResult,
  DEFAULT_POLICY_PATH,
  loadCompiledPolicy,
} from '../../api/policy.js';

export interface EvaluateOptions {
  input: string;
  policy?: string;
  data?: string;
  format?: 'text' | 'json';
}

/**
 * `gate evaluate`: runs a policy input (schemas/policy-input.schema.json) through the compiled
 * WebAssembly policy. Exit 0 allow, 1 deny, 2 could not decide. This is the evaluate stage on
 * its own, for policy authors and for replaying a recorded input.
 */
export async function evaluateCommand(opts: EvaluateOptions, io: CommandIO): Promise<number> {
  try {
    const resolve = (p: string) => path.resolve(io.cwd, p);
    const input = parseJSON(
      readBoundedFile(resolve(opts.input), undefined, 'policy input'),
      'policy input',
    );
    checkPolicyInput(input);
    const data = opts.data
      ? parseJSON(readBoundedFile(resolve(opts.data), undefined, 'data'), 'data')
      : undefined;
    const policy = await loadCompiledPolicy(
      opts.policy ? resolve(opts.policy) : DEFAULT_POLICY_PATH,
      data,
    );
    const result = policy.evaluate(input);
    io.stdout(
      opts.format === 'json'
        ? `${JSON.stringify({ ...result, policy: policy.digest }, null, 2)}\n`
        : renderText(result),
    );
    return result.allow ? EXIT.ok : EXIT.failed;
  } catch (err) {
    // Whatever kept the policy from answering, the answer is "could not decide".
    reportError(err, io);
    return EXIT.error;
  }
}

export function renderText(r: PolicyResult): string {
  const lines = [r.allow ? 'ALLOW' : 'DENY'];
  for (const v of r.violations) {
    lines.push(
      `  violation ${v.id}${v.subject ? ` (${v.subject.slice(0, 19)}...)` : ''}: ${v.message}`,
    );
    if (v.remediation) lines.push(`    to pass: ${v.remediation}`);
  }
  for (const w of r.warnings) {
    lines.push(
      `  warning ${w.id}${w.effectiveOn ? ` (enforced from ${w.effectiveOn})` : ''}: ${w.message}`,
    );
  }
  lines.push(`  rules checked: ${r.rules.join(', ') || 'none'}`);
  return `${lines.join('\n')}\n`;
}
