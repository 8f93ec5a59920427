import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { readWasmBundle } from '../../src/evaluate/bundle.js';
import { toPolicyAttestation } from '../../src/evaluate/input.js';
import { DEFAULT_POLICY_PATH, loadCompiledPolicy } from '../../src/evaluate/policy.js';
import { mergeData } from '../../src/config.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { keyIdOf } from '../../src/verify/key-id.js';
import { loadTrustedRoot } from '../../src/verify/trust.js';
import {
  buildVSA,
  inputAttestationsOf,
  signBundle,
  summarize,
  SUMMARY_BUNDLE_MEDIA_TYPE,
  VSA_PREDICATE_TYPE,
} from '../../src/vsa.js';
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
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
// the summaries carry no log entry: the public-good root's logs play no part, the key is the trust
const noLog = loadTrustedRoot();
const subject = { digest: { algorithm: 'sha256' as const, hex: HEX } };
const verifySummary = (bundle: unknown, keys = [{ pem, transparency: 'optional' as const }]) =>
  verifyAttestation(Buffer.from(JSON.stringify(bundle)), { trust: noLog, keys, subject });
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

  it('are signed as a Sigstore bundle v0.3 the gate verifies with the key declared transparency: optional', () => {
    const bundle = signBundle(buildVSA(decision(), options), privatePem);
    expect(bundle.mediaType).toBe(SUMMARY_BUNDLE_MEDIA_TYPE);
    // the key named as cosign names it; no log entry, no timestamp; no keyid in the envelope
    expect(bundle.verificationMaterial).toEqual({ publicKey: { hint: keyIdOf(publicKey) } });
    expect(bundle.dsseEnvelope.signatures).toEqual([{ sig: expect.any(String) }]);
    const a = verifySummary(bundle);
    expect(a.predicateType).toBe(VSA_PREDICATE_TYPE);
    expect(a.signer).toEqual({ kind: 'key', keyId: keyIdOf(publicKey) });
    expect(a.timeSource).toBe('none');
    // without the declaration a key-signed bundle needs a log entry or a timestamp
    expectCode(() => verifySummary(bundle, [{ pem }] as never), 'TIMESTAMP_INVALID');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    expectCode(
      () => verifySummary(bundle, [{ pem: other, transparency: 'optional' }]),
      'SIGNATURE_INVALID',
    );
  });

  it('are held to the rules of the key their signature verifies with, whatever other keys allow', () => {
    const required = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const requiredPem = required.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const keys = [
      { pem, transparency: 'optional' as const },
      { pem: requiredPem } as { pem: string; transparency: 'optional' },
    ];
    const bundle = signBundle(buildVSA(decision(), options), privatePem);
    expect(verifySummary(bundle, keys).signer.keyId).toBe(keyIdOf(publicKey));
    // changed after signing: no key verifies it, and that is what the gate says (not that the
    // other key would have wanted a log entry)
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
    statement.predicate.timeVerified = '2099-01-01T00:00:00.000Z';
    const forged = structuredClone(bundle);
    forged.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    expectCode(() => verifySummary(forged, keys), 'SIGNATURE_INVALID');
    // signed by the key that needs a log entry, naming the optional key in its hint: still needs it
    const byRequired = signBundle(
      buildVSA(decision(), options),
      required.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    );
    byRequired.verificationMaterial.publicKey.hint = keyIdOf(publicKey);
    expectCode(() => verifySummary(byRequired, keys), 'TIMESTAMP_INVALID');
  });

  it('list the verified evidence the allow rested on, by source and digest, and not the rejected', () => {
    const id = (c: string) => c.repeat(64);
    const d = decision({
      evidence: [
        { id: id('1'), source: 'file:evidence/provenance.json', status: 'verified' },
        {
          id: id('2'),
          source: 'oci:registry.example/app@sha256:ab#referrers-api',
          status: 'verified',
        },
        {
          id: id('3'),
          source: 'file:evidence/forged.json',
          status: 'rejected',
          code: 'SIGNATURE_INVALID',
        },
        { id: '', source: 'oci:down.example/app', status: 'rejected', code: 'SOURCE_UNREACHABLE' },
      ],
    });
    expect(inputAttestationsOf(d)).toEqual([
      { uri: 'file:evidence/provenance.json', digest: { sha256: id('1') } },
      { uri: 'oci:registry.example/app@sha256:ab#referrers-api', digest: { sha256: id('2') } },
    ]);
    const bundle = summarize(
      d,
      { keyPem: privatePem, policyUri: options.policyBaseUri },
      {
        gate: { config: { vsa: { verifier_id: options.verifierId } } },
      },
    );
    expect(verifySummary(bundle).predicate).toMatchObject({
      inputAttestations: inputAttestationsOf(d),
      decisionId: d.id,
    });
  });

  it('satisfy the default library’s promotion rule for production', async () => {
    const a = verifySummary(signBundle(buildVSA(decision(), options), privatePem));
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
