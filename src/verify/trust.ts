import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import { GateError } from '../errors.js';
import { isPlainObject, parseJSON, readBoundedFile, sha256Hex } from '../util/input.js';
import { packagePath } from '../util/paths.js';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';

/** Trust material, loaded once by the caller and passed to every verification. */
export interface Trust {
  root: TrustedRoot;
  /** @sigstore/verify's form, without keys: key-based trust is added per verification */
  material: Omit<TrustMaterial, 'publicKey'>;
  /** sha256 hex of the trusted root's bytes, recorded in decisions */
  digest: string;
  /** where it came from: a path, 'public-good (bundled)' or 'tuf' */
  source: string;
}

/** The public-good root shipped in the package: the offline default. */
export const DEFAULT_TRUSTED_ROOT_PATH = packagePath('trust', 'public-good.trusted_root.json');

export function loadTrustedRoot(file: string = DEFAULT_TRUSTED_ROOT_PATH): Trust {
  const bytes = readBoundedFile(file, undefined, 'trusted root');
  const source = file === DEFAULT_TRUSTED_ROOT_PATH ? 'public-good (bundled)' : file;
  return trustFromJSON(parseJSON(bytes, `trusted root ${file}`), sha256Hex(bytes), source);
}

export function trustFromJSON(json: unknown, digest: string, source: string): Trust {
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
  if (root.certificateAuthorities.length + root.tlogs.length === 0) {
    throw new GateError(
      'TRUST_ROOT_INVALID',
      'trusted root has no certificate authorities and no logs',
    );
  }
  const { publicKey: _unused, ...rest } = material;
  return { root, material: rest, digest, source };
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
  return (err instanceof Error ? err.message : String(err)).toLowerCase();
}
