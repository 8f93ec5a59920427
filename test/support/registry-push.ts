import { createHash } from 'node:crypto';

/**
 * Pushes content into a real registry over the distribution API (monolithic blob upload, PUT
 * manifest), the way cosign and oras write it. Test-only: real cosign and oras builds come later.
 */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export const sha256 = (b: Buffer | string) =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function pushBlob(
  base: string,
  repo: string,
  bytes: Buffer,
  mediaType = 'application/octet-stream',
  /** the digest the upload claims; a registry refuses a wrong one, so tests leave it honest */
): Promise<Descriptor> {
  const digest = sha256(bytes);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start answered ${start.status}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  if (put.status !== 201) throw new Error(`blob upload answered ${put.status}`);
  return { mediaType, digest, size: bytes.length };
}

/** PUTs a manifest under a tag or its digest; returns its descriptor. */
export async function pushManifest(
  base: string,
  repo: string,
  manifest: object | Buffer,
  ref?: string,
): Promise<Descriptor> {
  const bytes = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest));
  const mediaType =
    (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? OCI_MANIFEST;
  const digest = sha256(bytes);
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref ?? digest}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  if (res.status !== 201)
    throw new Error(`manifest put answered ${res.status}: ${await res.text()}`);
  return { mediaType, digest, size: bytes.length };
}

/** A small image: an empty config and one layer; returns its manifest's descriptor. */
export async function pushImage(base: string, repo: string, tag = 'latest'): Promise<Descriptor> {
  const config = await pushBlob(
    base,
    repo,
    Buffer.from('{}'),
    'application/vnd.oci.image.config.v1+json',
  );
  const layer = await pushBlob(
    base,
    repo,
    Buffer.from(`layer ${Math.random()}`),
    'application/vnd.oci.image.layer.v1.tar',
  );
  return pushManifest(
    base,
    repo,
    { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] },
    tag,
  );
}

/** A Sigstore bundle as an OCI artifact, as cosign v3 and GitHub's push-to-registry write it. */
export async function pushBundleArtifact(
  base: string,
  repo: string,
  subject: Descriptor,
  bundle: Buffer,
  opts: { artifactType?: string; layerMediaType?: string } = {},
): Promise<Descriptor> {
  const empty = await pushBlob(base, repo, Buffer.from('{}'), OCI_EMPTY);
  const layer = await pushBlob(base, repo, bundle, opts.layerMediaType ?? BUNDLE_V03);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: opts.artifactType ?? BUNDLE_V03,
    config: empty,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  const d = await pushManifest(base, repo, manifest);
  return { ...d, artifactType: manifest.artifactType };
}

/** The referrers tag schema: an index of referrers under the tag `sha256-<hex>`. */
export async function pushReferrersTag(
  base: string,
  repo: string,
  subjectDigest: string,
  referrers: Descriptor[],
): Promise<Descriptor> {
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers };
  return pushManifest(base, repo, index, subjectDigest.replace(':', '-'));
}

/** One layer of a cosign legacy tag: the blob, its media type and its annotations. */
export interface LegacyCosignLayer {
  blob: Buffer;
  mediaType: string;
  annotations: Record<string, string>;
}

/**
 * cosign's legacy layout (pkg/oci/static, pkg/oci/remote): an image manifest tagged
 * `sha256-<hex>.att` (attestations) or `.sig` (signatures) in the image's repository, an image
 * config listing the layers, one layer per signature with its material in annotations.
 */
export async function pushLegacyCosign(
  base: string,
  repo: string,
  subjectDigest: string,
  suffix: 'att' | 'sig',
  layers: LegacyCosignLayer[],
): Promise<Descriptor> {
  const pushed = [];
  for (const l of layers) {
    const d = await pushBlob(base, repo, l.blob, l.mediaType);
    pushed.push({ ...d, annotations: l.annotations });
  }
  const config = await pushBlob(
    base,
    repo,
    Buffer.from(
      JSON.stringify({
        architecture: '',
        created: '0001-01-01T00:00:00Z',
        history: [{ created: '0001-01-01T00:00:00Z' }],
        os: '',
        rootfs: { type: 'layers', diff_ids: pushed.map((d) => d.digest) },
        config: {},
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: pushed };
  return pushManifest(base, repo, manifest, `${subjectDigest.replace(':', '-')}.${suffix}`);
}
