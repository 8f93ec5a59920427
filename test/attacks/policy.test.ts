import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gate } from '../../src/gate.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import {
  bytesOf,
  evidenceOf,
  gateOver,
  hex,
  requestFor,
  statementAbout,
  tmp,
} from './gate-support.js';
import { expectDecision, expectRefused } from './report.js';

/**
 * Attack corpus: the policy. A policy that answers nothing, one that needs a builtin WebAssembly
 * does not have, one that traps, and a caller who tries to set the policy's data through the
 * input: each is "could not decide" or a deny, never an allow. Real Rego compiled by opa.
 */
const ARTIFACT = Buffer.from('policy attack artifact\n');
const A = hex(ARTIFACT);

let svc: LocalSigstore;
let evidence: Buffer;
const gates: Gate[] = [];
const policies = tmp('policies');

function rego(name: string, body: string): string {
  const dir = path.join(policies, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'policy.rego'), `package gate\n\n${body}\n`);
  return dir;
}

async function gateWith(policy: Record<string, unknown>): Promise<Gate> {
  const g = await gateOver(svc, { evidence: [evidenceOf(evidence)], doc: { policy } });
  gates.push(g);
  return g;
}

beforeAll(async () => {
  svc = await startLocalSigstore();
  const m = await mintDSSEBundle(svc, {
    statement: statementAbout([A]),
    version: '0.3',
    signer: 'keyless',
  });
  evidence = bytesOf(m.bundle);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await svc?.close();
});

describe('policies that cannot answer', () => {
  it('an undefined policy result is POLICY_UNDEFINED, could not decide', async () => {
    const g = await gateWith({
      path: rego(
        'undefined',
        'decision := {"allow": true, "violations": [], "warnings": [], "rules": []} if input.environment == "dev"',
      ),
    });
    expect((await g.check(requestFor(A, 'dev'))).outcome).toBe('allow');
    const d = await g.check(requestFor(A, 'production'));
    expectDecision('undefined policy result', undefined, d, 'error', 'POLICY_UNDEFINED');
    expect(d.allow).toBe(false);
  });

  it('a builtin the wasm runtime lacks is refused when the gate loads the policy', async () => {
    await expectRefused(
      'missing builtin (http.send)',
      undefined,
      () => gateWith({ path: path.join(FIXTURES, 'policies', 'host-builtin') }),
      'POLICY_LOAD_FAILED',
      /http\.send/,
    );
  });

  it('a trap while evaluating (a conflict) is POLICY_EVAL_FAILED, could not decide', async () => {
    const g = await gateWith({
      path: rego(
        'conflict',
        [
          'decision := {"allow": true, "violations": [], "warnings": [], "rules": []} if input.environment == "production"',
          'decision := {"allow": false, "violations": [], "warnings": [], "rules": []} if count(input.subjects) > 0',
        ].join('\n'),
      ),
    });
    const d = await g.check(requestFor(A, 'production'));
    expectDecision('policy trap (conflict)', undefined, d, 'error', 'POLICY_EVAL_FAILED');
  });

  it('an answer that is not a decision is POLICY_OUTPUT_INVALID, could not decide', async () => {
    const g = await gateWith({
      path: rego('not-a-decision', 'decision := {"allow": "yes"}'),
    });
    const d = await g.check(requestFor(A, 'production'));
    expectDecision('policy output not a decision', undefined, d, 'error', 'POLICY_OUTPUT_INVALID');
  });
});

describe('input that tries to shadow policy data', () => {
  const OPEN = [
    'decision := {"allow": count(v) == 0, "violations": v, "warnings": [], "rules": ["t.open"]}',
    'v := [x | not data.gate.config.open == true; x := {"id": "t.open", "message": "closed", "remediation": "configure open", "attestations": []}]',
  ].join('\n');

  it('a context naming data, gate or config changes nothing the policy reads from data', async () => {
    const g = await gateWith({ path: rego('open', OPEN), config: { open: false } });
    const context = {
      open: true,
      data: { gate: { config: { open: true } } },
      gate: { config: { open: true } },
      config: { open: true },
      // an own "__proto__" key, as JSON from the wire carries it
      ...(JSON.parse('{"__proto__": {"open": true}}') as object),
    };
    const d = await g.check(requestFor(A, 'production', { context }));
    expectDecision('input shadowing policy data', undefined, d, 'deny');
    expect(d.violations.map((v) => v.id)).toEqual(['t.open']);
    // and the configuration itself does open it: the rule can pass
    const open = await gateWith({ path: rego('open2', OPEN), config: { open: true } });
    expect((await open.check(requestFor(A, 'production'))).outcome).toBe('allow');
  });
});
