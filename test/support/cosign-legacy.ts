import type { SerializedBundle } from '@sigstore/bundle';
import { toPEM } from './local-fulcio.js';
import type { Minted } from './mint.js';
import type { LegacyCosignLayer } from './registry-push.js';
import type { LocalSigstore } from './sigstore-services.js';

/**
 * Takes a minted v0.1 bundle apart into the layer cosign's legacy layout stores (cosign
 * pkg/oci/static and cmd/cosign/cli/attest with --new-bundle-format=false): the signed content as
 * the blob, the verification material as annotations. Test-only; real cosign output is tested
 * with the cosign binary.
 */
export const DSSE_LAYER = 'application/vnd.dsse.envelope.v1+json';
export const SIMPLE_SIGNING_LAYER = 'application/vnd.dev.cosign.simplesigning.v1+json';

export const A = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
  timestamp: 'dev.sigstore.cosign/rfc3161timestamp',
} as const;

/** The chain cosign writes next to the leaf: the CA certificates Fulcio returned, PEM. */
export function chainPem(svc: LocalSigstore): string {
  return svc.trustedRoot.certificateAuthorities[0]!.certChain.certificates.map((c) =>
    toPEM(Buffer.from(c.rawBytes, 'base64')),
  ).join('');
}

/** cosign's RekorBundle JSON (Go field names; []byte as base64) from a bundle's log entry. */
export function rekorBundleAnnotation(bundle: SerializedBundle): string {
  const e = bundle.verificationMaterial.tlogEntries[0]!;
  return JSON.stringify({
    SignedEntryTimestamp: e.inclusionPromise!.signedEntryTimestamp,
    Payload: {
      body: e.canonicalizedBody,
      integratedTime: Number(e.integratedTime),
      logIndex: Number(e.logIndex),
      logID: Buffer.from(e.logId.keyId, 'base64').toString('hex'),
    },
  });
}

function material(m: Minted, svc: LocalSigstore, signature: string): Record<string, string> {
  const b = m.bundle;
  const ann: Record<string, string> = {};
  if (m.certificatePem) {
    ann[A.certificate] = m.certificatePem;
    ann[A.chain] = chainPem(svc);
  }
  if (b.verificationMaterial.tlogEntries.length > 0) ann[A.bundle] = rekorBundleAnnotation(b);
  const ts = b.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0];
  if (ts) ann[A.timestamp] = JSON.stringify({ SignedRFC3161Timestamp: ts.signedTimestamp });
  ann[A.signature] = signature;
  return ann;
}

/** An `.att` layer: the DSSE envelope as Go's encoding/json writes the protobuf struct. */
export function attLayer(m: Minted, svc: LocalSigstore): LegacyCosignLayer {
  const env = m.bundle.dsseEnvelope!;
  const blob = Buffer.from(
    JSON.stringify({
      payload: env.payload,
      payloadType: env.payloadType,
      signatures: env.signatures.map((s) => ({ sig: s.sig })),
    }),
  );
  const annotations = { predicateType: 'https://slsa.dev/provenance/v1', ...material(m, svc, '') };
  return { blob, mediaType: DSSE_LAYER, annotations };
}

/** A `.sig` layer: the exact payload that was signed, the signature in an annotation. */
export function sigLayer(m: Minted, svc: LocalSigstore, payload: Buffer): LegacyCosignLayer {
  const signature = m.bundle.messageSignature!.signature;
  return {
    blob: payload,
    mediaType: SIMPLE_SIGNING_LAYER,
    annotations: material(m, svc, signature),
  };
}

/** cosign's simple-signing payload for an image digest (sigstore/sigstore pkg/signature/payload). */
export function simpleSigning(
  digest: string,
  reference = 'registry.example/app',
  optional: Record<string, unknown> | null = null,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': reference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional,
    }),
  );
}
