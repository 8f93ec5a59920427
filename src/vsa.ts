import crypto from 'node:crypto';
import { dsse } from '@sigstore/core';
import type { Decision } from './decision.js';
import { GateError } from './errors.js';
import { IN_TOTO_PAYLOAD_TYPE } from './verify/attestation.js';

export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1';

export interface VsaOptions {
  /** verifier.id: must equal the policy data's vsa.verifier_id for promotion to accept it */
  verifierId: string;
  /** the environment is appended as /environments/<env> (docs/policies.md) */
  policyBaseUri: string;
  /** the attestations the decision used, as resource descriptors */
  inputAttestations?: Array<{ uri: string; digest: Record<string, string> }>;
}

/**
 * A SLSA Verification Summary (https://slsa.dev/verification_summary/v1) for an allowed
 * decision: the proof the promotion rule accepts that these digests passed this environment.
 * Never for a deny or an override: an override is not a verification.
 */
export function buildVSA(d: Decision, o: VsaOptions) {
  if (d.outcome !== 'allow' || d.mode !== 'enforce') {
    throw new GateError(
      'USAGE_ERROR',
      `a verification summary is only issued for an enforced allow, not ${d.outcome}`,
    );
  }
  if (d.asOf !== undefined) {
    throw new GateError(
      'USAGE_ERROR',
      'a verification summary is not issued for a decision made as of another time',
    );
  }
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: d.subjects.map((s) => ({ ...(s.name ? { name: s.name } : {}), digest: s.digest })),
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: { id: o.verifierId, version: { gate: d.gateVersion } },
      timeVerified: d.time,
      resourceUri: resourceUri(d.subjects[0]!.digest),
      policy: {
        uri: `${o.policyBaseUri.replace(/\/+$/, '')}/environments/${d.environment}`,
        digest: { sha256: d.digests.policy ?? '' },
      },
      inputAttestations: o.inputAttestations ?? [],
      verificationResult: 'PASSED',
      verifiedLevels: [],
      decisionId: d.id,
    },
  };
}

function resourceUri(digest: Record<string, string>): string {
  const [alg, hex] = Object.entries(digest)[0]!;
  return `${alg}:${hex}`;
}

/** Signs a statement as a DSSE envelope with the gate's key (verifiable with `keys` in gate.yaml). */
export function signEnvelope(
  statement: unknown,
  privateKeyPem: string,
): { payloadType: string; payload: string; signatures: Array<{ keyid: string; sig: string }> } {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new GateError('CONFIG_INVALID', 'the verification summary key is not a pem private key', {
      cause: err,
    });
  }
  const payload = Buffer.from(JSON.stringify(statement));
  const pae = dsse.preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload);
  const hash = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const spki = crypto.createPublicKey(key).export({ format: 'der', type: 'spki' });
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [
      {
        keyid: crypto.createHash('sha256').update(spki).digest('hex'),
        sig: crypto.sign(hash, pae, key).toString('base64'),
      },
    ],
  };
}

export type SignedSummary = ReturnType<typeof signEnvelope>;

/**
 * A signed summary of an enforced allow, with the configured key (`vsa.key`) and the policy
 * data's verifier id (`vsa.verifier_id`): what the next environment's promotion rule accepts.
 */
export function summarize(
  d: Decision,
  vsa: { keyPem: string; policyUri: string } | undefined,
  policyData: unknown,
): SignedSummary {
  if (!vsa)
    throw new GateError(
      'CONFIG_INVALID',
      'a verification summary needs vsa.key in the configuration',
    );
  const verifierId = (
    policyData as { gate?: { config?: { vsa?: { verifier_id?: string } } } } | undefined
  )?.gate?.config?.vsa?.verifier_id;
  if (!verifierId)
    throw new GateError(
      'CONFIG_INVALID',
      'a verification summary needs vsa.verifier_id in the policy configuration',
    );
  return signEnvelope(buildVSA(d, { verifierId, policyBaseUri: vsa.policyUri }), vsa.keyPem);
}
