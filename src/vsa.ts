import crypto from 'node:crypto';
import { dsse } from '@sigstore/core';
import type { Decision } from './decision.js';
import { GateError } from './errors.js';
import { IN_TOTO_PAYLOAD_TYPE } from './verify/attestation.js';
import { keyIdOf } from './verify/key-id.js';

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

/**
 * The evidence an allow rested on, as SLSA resource descriptors: every piece the gate verified
 * for this decision, named by where it was found and by the SHA-256 of its bytes as collected
 * (the evidence id the decision and the ledger record). Rejected evidence is not listed: the
 * decision did not rest on it.
 */
export function inputAttestationsOf(
  d: Decision,
): Array<{ uri: string; digest: Record<string, string> }> {
  return d.evidence
    .filter((e) => e.status === 'verified' && /^[0-9a-f]{64}$/.test(e.id))
    .map((e) => ({ uri: e.source, digest: { sha256: e.id } }));
}

function resourceUri(digest: Record<string, string>): string {
  const [alg, hex] = Object.entries(digest)[0]!;
  return `${alg}:${hex}`;
}

/** The Sigstore bundle the gate writes a signed summary as (what cosign v3 writes and reads). */
export const SUMMARY_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * Signs a statement with the gate's key as a Sigstore bundle v0.3 holding a DSSE envelope, the
 * shape `cosign attest-blob --key --tlog-upload=false` writes: the key named by its hint (base64
 * of the SPKI's SHA-256, the one key id form the gate reports), no log entry, no timestamp.
 * `cosign verify-blob-attestation --bundle --key --insecure-ignore-tlog` verifies it as it is,
 * and a gate that lists the key with `transparency: optional` takes it as evidence. The
 * envelope's signature carries no keyid: cosign v3 refuses a bundle whose envelope names one.
 */
export function signBundle(statement: unknown, privateKeyPem: string) {
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
  return {
    mediaType: SUMMARY_BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyIdOf(crypto.createPublicKey(key)) } },
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: crypto.sign(hash, pae, key).toString('base64') }],
    },
  };
}

export type SignedSummary = ReturnType<typeof signBundle>;

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
  return signBundle(
    buildVSA(d, {
      verifierId,
      policyBaseUri: vsa.policyUri,
      inputAttestations: inputAttestationsOf(d),
    }),
    vsa.keyPem,
  );
}
