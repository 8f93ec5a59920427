import type { FulcioExtensionName } from '../../src/verify/types.js';

/**
 * Fulcio certificate extension OIDs by the names src/verify/types.ts uses. Kept here rather than
 * imported from src so the test fixtures do not depend on the code they test.
 * https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md
 */
export const FULCIO_OIDS: Record<FulcioExtensionName, string> = {
  issuer: '1.3.6.1.4.1.57264.1.8',
  buildSignerURI: '1.3.6.1.4.1.57264.1.9',
  buildSignerDigest: '1.3.6.1.4.1.57264.1.10',
  runnerEnvironment: '1.3.6.1.4.1.57264.1.11',
  sourceRepositoryURI: '1.3.6.1.4.1.57264.1.12',
  sourceRepositoryDigest: '1.3.6.1.4.1.57264.1.13',
  sourceRepositoryRef: '1.3.6.1.4.1.57264.1.14',
  sourceRepositoryIdentifier: '1.3.6.1.4.1.57264.1.15',
  sourceRepositoryOwnerURI: '1.3.6.1.4.1.57264.1.16',
  sourceRepositoryOwnerIdentifier: '1.3.6.1.4.1.57264.1.17',
  buildConfigURI: '1.3.6.1.4.1.57264.1.18',
  buildConfigDigest: '1.3.6.1.4.1.57264.1.19',
  buildTrigger: '1.3.6.1.4.1.57264.1.20',
  runInvocationURI: '1.3.6.1.4.1.57264.1.21',
  sourceRepositoryVisibilityAtSigning: '1.3.6.1.4.1.57264.1.22',
};

/** The deprecated v1 issuer extension: raw bytes, not DER. Real Fulcio still writes it. */
export const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';

const OID_RE = /^\d+(\.\d+)+$/;

/** Resolves extension names to OIDs; keys that already are dotted OIDs pass through. */
export function extensionsToOIDs(extensions: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(extensions)) {
    const oid = OID_RE.test(key) ? key : FULCIO_OIDS[key as FulcioExtensionName];
    if (!oid) throw new Error(`unknown Fulcio extension name: ${key}`);
    out[oid] = value;
  }
  return out;
}
