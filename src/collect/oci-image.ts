import { GateError } from '../errors.js';
import type { ImageRef, Subject } from '../subject.js';
import { clip } from '../util/input.js';
import { createOciClient, type OciClient, type OciClientOptions } from './oci-client.js';
import { createKeychain, type KeychainOptions } from './oci-credentials.js';
import { isDigest, parseRepository, type Repository } from './oci-ref.js';

/** An image reference, parsed: where it lives, and the tag and digest it names. */
export interface ImageReference {
  /** as the user wrote it */
  reference: string;
  /** the name as written, without tag or digest (how admission and release sets name it) */
  name: string;
  repository: Repository;
  tag?: string;
  digest?: string;
  /** how the decision records it */
  ref: ImageRef;
}

const DOCKER_HUB = 'index.docker.io';
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Parses `[REGISTRY/]REPO[:TAG][@DIGEST]` the way Docker and Kubernetes read image references:
 * the first path component is a registry when it has a `.` or a `:` or is `localhost`, else the
 * image is on Docker Hub (`nginx` is `index.docker.io/library/nginx`).
 */
export function parseImageReference(ref: string, insecure: readonly string[] = []): ImageReference {
  const bad = (why: string) =>
    new GateError('USAGE_ERROR', `image ${JSON.stringify(clip(ref, 200))}: ${why}`);
  if (typeof ref !== 'string' || ref === '' || ref.length > 1024 || /\s/.test(ref))
    throw bad('expected REGISTRY/REPOSITORY[:TAG][@sha256:HEX]');
  const at = ref.indexOf('@');
  const digest = at === -1 ? undefined : ref.slice(at + 1);
  if (digest !== undefined && !isDigest(digest)) throw bad('the digest is not sha256:<64 hex>');
  const named = at === -1 ? ref : ref.slice(0, at);
  // A colon after the last slash starts a tag; one before it is a registry port.
  const colon = named.lastIndexOf(':');
  const hasTag = colon > named.lastIndexOf('/');
  const name = hasTag ? named.slice(0, colon) : named;
  const tag = hasTag ? named.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag))
    throw bad(`${JSON.stringify(clip(tag, 140))} is not a tag`);
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const isRegistry =
    first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let host = isRegistry ? first : DOCKER_HUB;
  let path = isRegistry ? name.slice(slash + 1) : name;
  if (host === 'docker.io' || host === 'registry-1.docker.io') host = DOCKER_HUB;
  if (host === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  let repository: Repository;
  try {
    repository = parseRepository(`${host}/${path}`, insecure);
  } catch (err) {
    throw bad((err as GateError).message.replace(/^repository [^:]*: /, ''));
  }
  const tagged = tag !== undefined ? { tag } : {};
  return {
    reference: ref,
    name,
    repository,
    ...tagged,
    ...(digest !== undefined ? { digest } : {}),
    ref: { reference: ref, repository: `${repository.host}/${repository.name}`, ...tagged },
  };
}

/**
 * The subject an image reference stands for. A digest in the reference is what is decided (a
 * tag beside it is recorded, as Docker ignores it); a tag alone is resolved once, by hashing the
 * manifest bytes the registry serves (never its Docker-Content-Digest header alone).
 */
export async function resolveImage(
  client: OciClient,
  image: ImageReference,
  signal?: AbortSignal,
): Promise<Subject> {
  let digest = image.digest;
  if (digest === undefined) {
    const m = await client.manifest(image.repository, image.tag ?? 'latest', signal);
    if (!m) {
      throw new GateError(
        'IMAGE_NOT_FOUND',
        `${image.repository.host}/${image.repository.name} has no tag ${image.tag ?? 'latest'}`,
      );
    }
    digest = m.digest;
  }
  const [algorithm, hex] = digest.split(':') as ['sha256' | 'sha512', string];
  return { digest: { algorithm, hex }, name: image.name, image: image.ref };
}

/**
 * Resolves image references with one registry client (its tokens reused across images) and the
 * same credentials as the registry source.
 */
export function createImageResolver(opts: OciClientOptions & KeychainOptions): {
  resolve(reference: string, signal?: AbortSignal): Promise<Subject>;
  close(): Promise<void>;
} {
  const client = createOciClient({ ...opts, keychain: opts.keychain ?? createKeychain(opts) });
  return {
    resolve: (reference, signal) =>
      resolveImage(client, parseImageReference(reference, opts.insecure), signal),
    close: () => client.close(),
  };
}
