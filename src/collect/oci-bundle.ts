import { GateError } from '../errors.js';
import type { OciClient } from './oci-client.js';
import {
  isBundleMediaType,
  parseDescriptor,
  OCI_MANIFEST,
  type Descriptor,
} from './oci-manifest.js';
import type { Repository } from './oci-ref.js';

/**
 * The Sigstore bundles a referrer holds (cosign's BUNDLE_SPEC: an image manifest whose
 * artifactType is the bundle media type, an empty config, the bundle JSON as a layer, and a
 * subject). The listing's descriptor is a claim: the manifest is fetched by digest and checked,
 * so a referrer whose listed artifactType lies, or that refers to another subject, is rejected.
 * Referrers of other types are not bundles and give an empty list. Nested indexes are never
 * followed, so a manifest loop cannot form here.
 */
export async function bundlesOf(
  client: OciClient,
  repo: Repository,
  subject: string,
  listed: Descriptor,
  signal?: AbortSignal,
): Promise<Buffer[]> {
  const claimsBundle = isBundleMediaType(listed.artifactType);
  if (listed.artifactType !== undefined && !claimsBundle) return [];
  const what = `referrer ${listed.digest}`;
  const m = await client.manifest(repo, listed.digest, signal);
  if (!m)
    throw new GateError(
      'EVIDENCE_CONTENT_MISSING',
      `${what} is listed but the registry does not have it`,
    );
  if (m.mediaType !== OCI_MANIFEST) {
    if (!claimsBundle) return [];
    throw mismatch(`${what} is listed as a sigstore bundle but is ${m.mediaType}`);
  }
  const artifactType = artifactTypeOf(m.doc);
  if (!isBundleMediaType(artifactType)) {
    if (!claimsBundle) return [];
    throw mismatch(
      `${what} is listed as ${listed.artifactType} but holds ${artifactType ?? 'no artifact type'}`,
    );
  }
  const subj =
    m.doc.subject === undefined ? undefined : parseDescriptor(m.doc.subject, `${what} subject`);
  if (subj?.digest !== subject) {
    throw mismatch(`${what} refers to ${subj?.digest ?? 'no subject'}, not ${subject}`);
  }
  const layers = Array.isArray(m.doc.layers) ? m.doc.layers : [];
  const bundles = layers
    .map((l, i) => parseDescriptor(l, `${what} layer ${i}`))
    .filter((l) => isBundleMediaType(l.mediaType));
  if (bundles.length === 0)
    throw mismatch(`${what} is a sigstore bundle artifact without a bundle layer`);
  return Promise.all(bundles.map((l) => client.blob(repo, l.digest, l.size, signal)));
}

/** artifactType, or the config's media type when absent (image spec 1.1 artifact guidance). */
function artifactTypeOf(doc: Record<string, unknown>): string | undefined {
  if (typeof doc.artifactType === 'string') return doc.artifactType;
  const config = doc.config as { mediaType?: unknown } | undefined;
  return typeof config?.mediaType === 'string' ? config.mediaType : undefined;
}

const mismatch = (message: string) => new GateError('OCI_REFERRER_MISMATCH', message);
