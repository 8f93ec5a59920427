import { GateError } from '../errors.js';

/** A repository in a registry, as configured: `host[:port]/path`, e.g. `ghcr.io/acme/app`. */
export interface Repository {
  /** host[:port], lowercase */
  host: string;
  /** the repository path, e.g. `acme/app` */
  name: string;
  /** `http://host` for loopback and configured-insecure registries, else `https://host` */
  base: string;
}

// The distribution spec's repository name grammar (path components joined by `/`).
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::\d{1,5})?$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Parses `host[:port]/name`; a bare `name` is refused (no implicit Docker Hub). */
export function parseRepository(ref: string, insecure: readonly string[] = []): Repository {
  const slash = ref.indexOf('/');
  const host = slash > 0 ? ref.slice(0, slash).toLowerCase() : '';
  const name = ref.slice(slash + 1);
  if (!HOST.test(host) || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw new GateError('CONFIG_INVALID', `repository ${ref}: expected registry-host/name`);
  }
  if (!NAME.test(name) || name.length > 255) {
    throw new GateError('CONFIG_INVALID', `repository ${ref}: ${name} is not a repository name`);
  }
  return { host, name, base: `${plainHttpAllowed(host, insecure) ? 'http' : 'https'}://${host}` };
}

/**
 * Plain HTTP only where Docker allows it by default (loopback: 127.0.0.0/8, ::1, localhost) or
 * where the operator said so; TLS everywhere else, so nobody on the path can swap evidence or
 * read a token.
 */
export function plainHttpAllowed(host: string, insecure: readonly string[]): boolean {
  const h = host.toLowerCase();
  const bare = h.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare)) return true;
  return insecure.some((i) => i.toLowerCase() === h || i.toLowerCase() === bare);
}

/** May this URL be fetched for a registry with these insecure hosts (redirects, token realms)? */
export function transportAllowed(url: URL, insecure: readonly string[]): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && plainHttpAllowed(url.host, insecure);
}

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** The referrers tag schema (distribution spec 1.1): `<alg>-<hex>`, cut to the 128-char tag limit. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

export const describeRepository = (r: Repository) => `${r.host}/${r.name}`;
