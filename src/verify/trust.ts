import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import { GateError } from '../errors.js';
import { clip, isPlainObject, readBoundedFile, sha256Hex } from '../util/input.js';
import { packagePath } from '../util/paths.js';
import { rootDocuments, type RootDocument } from './trust-file.js';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';

/** One trusted root: the authorities of one Sigstore instance. */
export interface TrustRoot {
  /** a label for decisions: the host of its first CA (or log), unique within its file */
  name: string;
  /** sha256 hex of the root's bytes (its line in a JSON Lines file) */
  digest: string;
  root: TrustedRoot;
  /** @sigstore/verify's form, without keys: key-based trust is added per verification */
  material: Omit<TrustMaterial, 'publicKey'>;
}

/**
 * Trust material, loaded once by the caller and passed to every verification: every root of the
 * trust file, each with its own authorities and its own rules (a root without transparency logs
 * vouches for signing time with its timestamp authorities instead; see root-policy.ts).
 */
export interface Trust {
  /** every root in file order, at least one */
  roots: TrustRoot[];
  /** the first root, for callers that know there is one (`gate trust refresh`) */
  root: TrustedRoot;
  material: Omit<TrustMaterial, 'publicKey'>;
  /** sha256 hex of the trust file's bytes, recorded in decisions */
  digest: string;
  /** where it came from: a path, 'public-good (bundled)' or 'tuf' */
  source: string;
}

/** The public-good root shipped in the package: the offline default. */
export const DEFAULT_TRUSTED_ROOT_PATH = packagePath('trust', 'public-good.trusted_root.json');

/** Reads a trusted root JSON file, or JSON Lines of several (`gh attestation trusted-root`). */
export function loadTrustedRoot(file: string = DEFAULT_TRUSTED_ROOT_PATH): Trust {
  const bytes = readBoundedFile(file, undefined, 'trusted root');
  const source = file === DEFAULT_TRUSTED_ROOT_PATH ? 'public-good (bundled)' : file;
  const docs = rootDocuments(bytes, `trusted root ${file}`);
  return trustOf(docs.map(rootOfDocument), sha256Hex(bytes), source);
}

export function trustFromJSON(json: unknown, digest: string, source: string): Trust {
  return trustOf([rootFromJSON(json, digest, 0)], digest, source);
}

function trustOf(roots: TrustRoot[], digest: string, source: string): Trust {
  const seen = new Set<string>();
  for (const r of roots) {
    // Two roots may name the same host (a file assembled by hand): keep labels apart.
    if (seen.has(r.name)) r.name = `${r.name} #${roots.indexOf(r) + 1}`;
    seen.add(r.name);
  }
  const first = roots[0]!;
  return { roots, root: first.root, material: first.material, digest, source };
}

function rootOfDocument(doc: RootDocument, index: number): TrustRoot {
  if (doc.line === undefined) return rootFromJSON(doc.json, doc.digest, index);
  try {
    return rootFromJSON(doc.json, doc.digest, index);
  } catch (err) {
    const e = err as GateError;
    throw new GateError(e.code, `line ${doc.line}: ${e.message}`, { cause: err });
  }
}

function rootFromJSON(json: unknown, digest: string, index: number): TrustRoot {
  if (!isPlainObject(json)) {
    throw new GateError('TRUST_ROOT_INVALID', 'trusted root must be a json object');
  }
  checkValidityStarts(json);
  let root: TrustedRoot;
  let material: TrustMaterial;
  try {
    root = TrustedRoot.fromJSON(json);
    material = toTrustMaterial(root);
  } catch (err) {
    throw new GateError('TRUST_ROOT_INVALID', `trusted root is malformed: ${messageOf(err)}`, {
      cause: err,
    });
  }
  checkAuthorities(root);
  const { publicKey: _unused, ...rest } = material;
  return { name: nameOf(root, index), digest, root, material: rest };
}

/**
 * A root must be able to vouch for something: keys need a log, and a CA's short-lived
 * certificates need a time inside their validity, from a log or from a timestamp authority.
 */
function checkAuthorities(root: TrustedRoot): void {
  if (root.certificateAuthorities.length + root.tlogs.length === 0) {
    throw new GateError(
      'TRUST_ROOT_INVALID',
      'trusted root has no certificate authorities and no logs',
    );
  }
  if (root.tlogs.length + root.timestampAuthorities.length === 0) {
    throw new GateError(
      'TRUST_ROOT_INVALID',
      'trusted root has no transparency logs and no timestamp authorities',
    );
  }
}

function nameOf(root: TrustedRoot, index: number): string {
  const uri = root.certificateAuthorities[0]?.uri || root.tlogs[0]?.baseUrl || '';
  let host = uri;
  try {
    host = new URL(uri).host || uri;
  } catch {
    // GitHub's root names its CA without a scheme ("fulcio.githubapp.com"): keep it as written.
  }
  return host ? clip(host, 80) : `root ${index + 1}`;
}

/**
 * @sigstore/verify treats a missing validFor.start as "since the beginning of time", which
 * silently widens trust. The trusted root spec makes the start required, so a root without one is
 * malformed and rejected whole (sigstore-conformance trust-root-tlog-missing-validity-start).
 */
function checkValidityStarts(json: Record<string, unknown>): void {
  const checks: Array<[string, (item: Record<string, unknown>) => unknown]> = [
    ['tlogs', (t) => (t.publicKey as Record<string, unknown> | undefined)?.validFor],
    ['ctlogs', (t) => (t.publicKey as Record<string, unknown> | undefined)?.validFor],
    ['certificateAuthorities', (t) => t.validFor],
    ['timestampAuthorities', (t) => t.validFor],
  ];
  for (const [field, validFor] of checks) {
    const list = json[field] ?? [];
    if (!Array.isArray(list)) {
      throw new GateError('TRUST_ROOT_INVALID', `trusted root ${field} must be an array`);
    }
    list.forEach((item: unknown, i) => {
      const v = isPlainObject(item) ? validFor(item) : undefined;
      if (!isPlainObject(v) || typeof v.start !== 'string' || v.start === '') {
        throw new GateError(
          'TRUST_ROOT_INVALID',
          `trusted root ${field}[${i}] has no validity start`,
        );
      }
    });
  }
}

export interface TUFRefreshOptions {
  /** the TUF repository (default: Sigstore's public-good CDN) */
  mirrorURL?: string;
  /** a trusted TUF root.json for that mirror (the public-good one is built into @sigstore/tuf) */
  rootPath?: string;
  /** where TUF metadata is cached between refreshes */
  cachePath?: string;
  /** milliseconds per request */
  timeout?: number;
}

/**
 * Fetches the current trusted root through a TUF repository. Only when the user asks for it
 * (`gate trust refresh`): verification itself never fetches anything.
 */
export async function refreshTrustedRootWithTUF(
  opts: TUFRefreshOptions = {},
): Promise<{ trust: Trust; json: unknown }> {
  const { getTrustedRoot } = await import('@sigstore/tuf');
  let root: TrustedRoot;
  try {
    root = await getTrustedRoot({
      ...(opts.mirrorURL ? { mirrorURL: opts.mirrorURL } : {}),
      ...(opts.rootPath ? { rootPath: opts.rootPath } : {}),
      ...(opts.cachePath ? { cachePath: opts.cachePath } : {}),
      timeout: opts.timeout ?? 10_000,
      retry: 1,
    });
  } catch (err) {
    throw new GateError('TRUST_ROOT_UNAVAILABLE', `tuf refresh failed: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const json = TrustedRoot.toJSON(root);
  return { trust: trustFromJSON(json, sha256Hex(JSON.stringify(json)), 'tuf'), json };
}

function messageOf(err: unknown): string {
  // one line: the library's messages quote the root's values (test/fuzz, issue 12)
  return clip((err instanceof Error ? err.message : String(err)).toLowerCase(), 1000);
}
