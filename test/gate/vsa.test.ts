import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { readWasmBundle } from '../../src/evaluate/bundle.js';
import { toPolicyAttestation } from '../../src/evaluate/input.js';
import { DEFAULT_POLICY_PATH, loadCompiledPolicy } from '../../src/evaluate/policy.js';
import { mergeData } from '../../src/config.js';
import { verifyEnvelope } from '../../src/verify/envelope.js';
import { buildVSA, signEnvelope, VSA_PREDICATE_TYPE } from '../../src/vsa.js';
import { expectCode } from '../helpers.js';

const HEX = 'ab'.repeat(32);
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
const decision = (over: Partial<Decision> = {}): Decision => ({
  id: '7d3f0c1e-0000-4000-8000-000000000001',
  time: '2026-11-20T10:00:00.000Z',
  gateVersion: '0.1.0',
  environment: 'staging',
  subjects: [{ name: 'api', digest: { sha256: HEX } }],
  mode: 'enforce',
  outcome: 'allow',
  allow: true,
  violations: [],
  warnings: [],
  rules: [],
  evidence: [],
  sourceFailures: [],
  digests: { policy: 'cd'.repeat(32), trustRoot: 't', config: 'c' },
  ...over,
});
const options = {
  verifierId: 'https://gate.acme.example/gate',
  policyBaseUri: 'https://gate.acme.example/policies/',
};

describe('verification summaries', () => {
  it('describe an allowed decision the way the promotion rule reads them', () => {
    const vsa = buildVSA(decision(), options);
    expect(vsa.predicateType).toBe(VSA_PREDICATE_TYPE);
    expect(vsa.subject).toEqual([{ name: 'api', digest: { sha256: HEX } }]);
    expect(vsa.predicate).toMatchObject({
      verifier: { id: options.verifierId },
      verificationResult: 'PASSED',
      resourceUri: `sha256:${HEX}`,
      policy: { uri: 'https://gate.acme.example/policies/environments/staging' },
      timeVerified: '2026-11-20T10:00:00.000Z',
    });
  });

  for (const [what, over] of [
    ['a deny', { outcome: 'deny', allow: false }],
    ['an override', { outcome: 'override' }],
    ['a dry-run', { mode: 'dry-run' }],
    ['an error', { outcome: 'error', allow: false }],
  ] as const) {
    it(`are never issued for ${what}`, () =>
      expectCode(() => buildVSA(decision(over as Partial<Decision>), options), 'USAGE_ERROR'));
  }

  it('are signed so that the gate verifies them with the key', () => {
    const env = signEnvelope(
      buildVSA(decision(), options),
      privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    );
    const a = verifyEnvelope(Buffer.from(JSON.stringify(env)), {
      keys: [{ pem }],
      subject: { digest: { algorithm: 'sha256', hex: HEX } },
    });
    expect(a.predicateType).toBe(VSA_PREDICATE_TYPE);
    // the envelope's keyid is hex; the gate reports the same key in its one (hint) form
    const hexId = env.signatures[0]!.keyid!;
    expect(a.signer).toEqual({ kind: 'key', keyId: Buffer.from(hexId, 'hex').toString('base64') });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    expectCode(
      () =>
        verifyEnvelope(Buffer.from(JSON.stringify(env)), {
          keys: [{ pem: other }],
          subject: { digest: { algorithm: 'sha256', hex: HEX } },
        }),
      'SIGNATURE_INVALID',
    );
  });

  it('satisfy the default library’s promotion rule for production', async () => {
    const env = signEnvelope(
      buildVSA(decision(), options),
      privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    );
    const a = verifyEnvelope(Buffer.from(JSON.stringify(env)), {
      keys: [{ pem }],
      subject: { digest: { algorithm: 'sha256', hex: HEX } },
    });
    const defaults = readWasmBundle(readFileSync(DEFAULT_POLICY_PATH)).data;
    const data = mergeData(defaults, {
      gate: {
        config: { vsa: { verifier_id: options.verifierId, signers: [{ key_id: a.signer.keyId }] } },
      },
    });
    const policy = await loadCompiledPolicy(DEFAULT_POLICY_PATH, data);
    const input = (attestations: unknown[]) => ({
      subjects: [{ name: 'api', digest: { sha256: HEX } }],
      environment: 'production',
      effectiveTime: '2026-11-20T12:00:00Z',
      attestations,
      rejected: [],
      context: {},
      breakGlass: [],
    });
    const ids = (r: { violations: Array<{ id: string }> }) => r.violations.map((v) => v.id);
    expect(ids(policy.evaluate(input([])))).toContain('promotion.vsa');
    expect(ids(policy.evaluate(input([toPolicyAttestation(a, 'file:vsa.json')])))).not.toContain(
      'promotion.vsa',
    );
  });
});
