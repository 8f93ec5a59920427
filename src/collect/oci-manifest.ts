import { createHash } from 'node:crypto';
import { GateError } from '../errors.js';
import { isPlainObject } from '../util/input.js';
import { isDigest } from './oci-ref.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');

/** An OCI content descriptor, checked: a digest the gate can compute, a size, a media type. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** in an image index: the platform the manifest is for */
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** Sigstore bundle media types: `application/vnd.dev.sigstore.bundle.v0.3+json` and the older
 * `application/vnd.dev.sigstore.bundle+json;version=0.x` form. */
export function isBundleMediaType(t: string | undefined): boolean {
  return (
    t !== undefined &&
    (/^application\/vnd\.dev\.sigstore\.bundle\.v0\.[1-9]\+json$/.test(t) ||
      /^application\/vnd\.dev\.sigstore\.bundle\+json; ?version=0\.[1-9]$/.test(t))
  );
}

/** The digest of these bytes with the algorithm `expected` names. */
export function digestOf(bytes: Buffer, algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws OCI_DIGEST_MISMATCH unless `bytes` hash to `expected`: content is its digest. */
export function checkDigest(bytes: Buffer, expected: string, what: string): void {
  if (!isDigest(expected)) {
    throw new GateError(
      'DIGEST_UNSUPPORTED',
      `${what}: ${expected.slice(0, 80)} is not a sha256 or sha512 digest`,
    );
  }
  const actual = digestOf(bytes, expected.slice(0, expected.indexOf(':')));
  if (actual !== expected) {
    throw new GateError(
      'OCI_DIGEST_MISMATCH',
      `${what}: expected ${expected}, the bytes served hash to ${actual}`,
    );
  }
}

/** Untrusted JSON from a registry, parsed inside a try: a bad document is a coded error. */
export function parseManifestJSON(bytes: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(`${what} is not json`);
  }
  if (!isPlainObject(doc)) throw invalid(`${what} is not a json object`);
  return doc;
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isPlainObject(v)) throw invalid(`${what} is not a descriptor`);
  const { mediaType, digest, size, artifactType, annotations, platform } = v;
  if (typeof mediaType !== 'string') throw invalid(`${what} has no media type`);
  if (typeof digest !== 'string' || !isDigest(digest))
    throw invalid(`${what} has no sha256 or sha512 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw invalid(`${what} has no size`);
  return {
    mediaType,
    digest,
    size,
    ...(typeof artifactType === 'string' ? { artifactType } : {}),
    ...(isStringMap(annotations) ? { annotations } : {}),
    ...(isPlainObject(platform) ? { platform: platformFields(platform) } : {}),
  };
}

/** `manifests` of an image index; each bad entry is reported, the good ones kept. */
export function indexEntries(
  doc: Record<string, unknown>,
  what: string,
): Array<Descriptor | GateError> {
  if (!Array.isArray(doc.manifests)) throw invalid(`${what} has no manifests list`);
  return doc.manifests.map((m, i) => {
    try {
      return parseDescriptor(m, `${what} entry ${i}`);
    } catch (err) {
      return err as GateError;
    }
  });
}

function platformFields(p: Record<string, unknown>): NonNullable<Descriptor['platform']> {
  const s = (v: unknown) => (typeof v === 'string' && /^[\w.-]{1,64}$/.test(v) ? v : undefined);
  const out: NonNullable<Descriptor['platform']> = {};
  for (const k of ['os', 'architecture', 'variant'] as const) {
    const v = s(p[k]);
    if (v) out[k] = v;
  }
  return out;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

export const invalid = (message: string) => new GateError('OCI_MANIFEST_INVALID', message);
