import { GateError } from '../errors.js';
import type { HttpClient } from './http.js';
import { describeUrl, HttpClientError } from './http-support.js';
import { authFailed, parseChallenge, TokenCache, type Challenge, type Login } from './oci-auth.js';
import {
  basicAuthorization,
  mayCarryCredentials,
  type Credential,
  type Keychain,
} from './oci-credentials.js';
import {
  checkDigest,
  digestOf,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  parseManifestJSON,
} from './oci-manifest.js';
import { isDigest, transportAllowed, type Repository } from './oci-ref.js';
import { createOciTransport, type OciTransport, type RawResponse } from './oci-transport.js';

const MiB = 1024 * 1024;
const MAX_REDIRECTS = 5;

export interface OciClientOptions {
  /** the shared JSON client: asks token endpoints */
  http: HttpClient;
  /** registry hosts (host or host:port) that may be read over plain http beyond loopback */
  insecure?: readonly string[];
  /** per attempt (default 10 s) */
  timeoutMs?: number;
  retries?: number;
  /** largest manifest (default 4 MiB, the size registries commonly accept) */
  maxManifestBytes?: number;
  /** largest blob read (default 16 MiB: bundles are a few KiB) */
  maxBlobBytes?: number;
  /** the user's registry credentials (oci-credentials.ts); unset: anonymous only */
  keychain?: Keychain;
}

/** A manifest as served, its bytes checked against the digest it is known by. */
export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  doc: Record<string, unknown>;
}

export interface OciClient {
  /** the manifest at a tag or digest; undefined when the registry has none (404) */
  manifest(
    repo: Repository,
    reference: string,
    signal?: AbortSignal,
  ): Promise<Manifest | undefined>;
  /** a blob, checked against its digest (and size, when the descriptor gave one) */
  blob(repo: Repository, digest: string, size?: number, signal?: AbortSignal): Promise<Buffer>;
  /** GET /v2/<name>/<path> with the auth flow; for endpoints that are not content-addressed */
  get(repo: Repository, path: string, accept: string, signal?: AbortSignal): Promise<RawResponse>;
  readonly maxManifestBytes: number;
  close(): Promise<void>;
}

/**
 * The registry client: one transport, the token flow (anonymous, or with the keychain's
 * credentials), redirects that never carry the registry's token or credentials to another
 * origin, and every manifest and blob checked against its digest.
 */
export function createOciClient(o: OciClientOptions): OciClient {
  const insecure = o.insecure ?? [];
  const timeoutMs = o.timeoutMs ?? 10_000;
  const transport = createOciTransport(o.http, { timeoutMs, retries: o.retries ?? 2 });
  const maxManifestBytes = o.maxManifestBytes ?? 4 * MiB;
  const maxBlobBytes = o.maxBlobBytes ?? 16 * MiB;
  const tokens = new TokenCache(o.http, insecure, timeoutMs);
  const send = authed(transport, tokens, insecure, o.keychain);
  const get: OciClient['get'] = (repo, path, accept, signal) =>
    send(repo, `${repo.base}/v2/${repo.name}/${path}`, accept, maxManifestBytes, signal);
  return {
    maxManifestBytes,
    get,
    async manifest(repo, reference, signal) {
      const res = await send(
        repo,
        `${repo.base}/v2/${repo.name}/manifests/${reference}`,
        MANIFEST_ACCEPT,
        maxManifestBytes,
        signal,
      );
      if (res.status === 404) return undefined;
      expectOk(res);
      return checkedManifest(res, reference, `manifest ${repo.host}/${repo.name}@${reference}`);
    },
    async blob(repo, digest, size, signal) {
      const what = `blob ${repo.host}/${repo.name}@${digest}`;
      if (size !== undefined && size > maxBlobBytes) {
        throw new GateError(
          'SOURCE_TOO_LARGE',
          `${what} is ${size} bytes, over the cap of ${maxBlobBytes}`,
        );
      }
      const res = await send(
        repo,
        `${repo.base}/v2/${repo.name}/blobs/${digest}`,
        '*/*',
        maxBlobBytes,
        signal,
      );
      if (res.status === 404)
        throw new GateError(
          'EVIDENCE_CONTENT_MISSING',
          `${what} is listed but the registry does not have it`,
        );
      expectOk(res);
      checkDigest(res.bytes, digest, what);
      if (size !== undefined && res.bytes.length !== size) {
        throw new GateError(
          'OCI_DIGEST_MISMATCH',
          `${what}: the descriptor says ${size} bytes, the blob has ${res.bytes.length}`,
        );
      }
      return res.bytes;
    },
    close: async () => {},
  };
}

/** Content-addressed: by digest, the bytes must hash to it; by tag, the bytes' own hash is the
 * digest, never the registry's header alone (a header that disagrees is a mismatch). */
function checkedManifest(res: RawResponse, reference: string, what: string): Manifest {
  let digest: string;
  if (isDigest(reference)) {
    checkDigest(res.bytes, reference, what);
    digest = reference;
  } else {
    digest = digestOf(res.bytes, 'sha256');
    const header = res.headers['docker-content-digest'];
    if (header?.startsWith('sha256:') && header !== digest) {
      throw new GateError(
        'OCI_DIGEST_MISMATCH',
        `${what}: the registry says ${header}, the bytes served hash to ${digest}`,
      );
    }
  }
  const doc = parseManifestJSON(res.bytes, what);
  const mediaType =
    typeof doc.mediaType === 'string'
      ? doc.mediaType
      : (res.headers['content-type'] ?? OCI_INDEX).split(';')[0]!.trim();
  return { digest, mediaType, bytes: res.bytes, doc };
}

type Send = (
  repo: Repository,
  url: string,
  accept: string,
  maxBytes: number,
  signal?: AbortSignal,
) => Promise<RawResponse>;

/** How a host's last challenge was answered: reused for its next requests. */
interface HostAuth {
  challenge: Challenge;
  credential: Credential | undefined;
}

/**
 * Sends with the host's last challenge answered; a 401 gets a fresh answer and one retry. The
 * answer: anonymously, a bearer token from the challenge's realm; with the user's credentials
 * (the keychain, asked on a host's first 401), `Basic` to a Basic challenge, a token the realm
 * issues for them to a Bearer challenge, or their bearer token sent as it is.
 */
function authed(
  transport: OciTransport,
  tokens: TokenCache,
  insecure: readonly string[],
  keychain: Keychain | undefined,
): Send {
  const hosts = new Map<string, HostAuth>();
  const authorization = async (
    repo: Repository,
    a: HostAuth,
    scope: string,
    signal?: AbortSignal,
  ) => {
    const c = a.credential;
    if (c?.kind === 'bearer') return `Bearer ${c.token}`;
    if (c?.kind === 'basic' && a.challenge.scheme === 'basic') return basicAuthorization(c);
    return `Bearer ${await tokens.token(a.challenge, scope, signal, loginFor(repo, c))}`;
  };
  return async (repo, url, accept, maxBytes, signal) => {
    const scope = `repository:${repo.name}:pull`;
    const headers: Record<string, string> = { accept };
    const known = hosts.get(repo.host);
    if (known) headers.authorization = await authorization(repo, known, scope, signal);
    let res = await follow(transport, url, headers, maxBytes, insecure, signal);
    if (known?.credential && res.status === 403 && sameOrigin(res.url, url)) {
      throw refused(url, repo, known.credential, 403);
    }
    if (res.status !== 401) return res;
    const c = parseChallenge(res.headers['www-authenticate'] ?? '');
    if (known) tokens.forget(known.challenge, scope, loginFor(repo, known.credential));
    const credential = keychain ? await keychain.resolve(repo.host) : undefined;
    const answer = answerable(url, repo, c, credential, keychain);
    if (credential && !mayCarryCredentials(new URL(url), repo.host, insecure)) {
      throw new GateError(
        'SOURCE_INSECURE_TRANSPORT',
        `${describeUrl(url)} is plain http: the gate sends no credentials there`,
      );
    }
    hosts.set(repo.host, answer);
    headers.authorization = await authorization(repo, answer, scope, signal);
    res = await follow(transport, url, headers, maxBytes, insecure, signal);
    if (credential && (res.status === 401 || (res.status === 403 && sameOrigin(res.url, url)))) {
      throw refused(url, repo, credential, res.status);
    }
    if (res.status === 401) {
      throw authFailed(
        `${describeUrl(url)} refused the anonymous token: the repository may be private${keychain ? ` (no credentials for ${repo.host} in ${keychain.searched})` : ''}`,
      );
    }
    return res;
  };
}

/** The challenge, when the gate can answer it with what it has; else why not. */
function answerable(
  url: string,
  repo: Repository,
  c: Challenge | undefined,
  credential: Credential | undefined,
  keychain: Keychain | undefined,
): HostAuth {
  // a bearer token of the user's own is sent as it is, whatever the registry's challenge
  if (credential?.kind === 'bearer')
    return { challenge: c ?? { scheme: 'bearer', params: {} }, credential };
  if (c?.scheme === 'bearer') return { challenge: c, credential };
  if (c?.scheme === 'basic') {
    if (credential && credential.kind !== 'identity') return { challenge: c, credential };
    const why = credential
      ? `the credentials from ${credential.source} are an identity token, which answers only a bearer challenge`
      : `the gate has no credentials for ${repo.host} (looked in ${keychain?.searched ?? 'nothing: no keychain'})`;
    throw authFailed(`${describeUrl(url)} asks for basic authentication; ${why}`);
  }
  throw authFailed(
    `${describeUrl(url)} asks for ${c?.scheme ?? 'unknown'} authentication, which the gate does not speak`,
  );
}

function loginFor(repo: Repository, c: Credential | undefined): Login | undefined {
  return c && c.kind !== 'bearer' ? { registry: repo.host, credential: c } : undefined;
}

const sameOrigin = (a: string, b: string) => new URL(a).origin === new URL(b).origin;

const refused = (url: string, repo: Repository, c: Credential, status: number) =>
  authFailed(
    `${describeUrl(url)} refused the credentials from ${c.source} for ${repo.host} (http ${status})`,
  );

/** Registries send blobs to storage by redirect; the token is the registry's, never the storage's. */
async function follow(
  transport: OciTransport,
  url: string,
  headers: Record<string, string>,
  maxBytes: number,
  insecure: readonly string[],
  signal?: AbortSignal,
): Promise<RawResponse> {
  const origin = new URL(url).origin;
  let at = url;
  for (let hop = 0; ; hop++) {
    const sendHeaders =
      new URL(at).origin === origin ? headers : { accept: headers.accept ?? '*/*' };
    const res = await transport.get(at, { headers: sendHeaders, maxBytes, signal });
    if (![301, 302, 303, 307, 308].includes(res.status)) return res;
    if (hop >= MAX_REDIRECTS)
      throw badResponse(`${describeUrl(url)} redirected more than ${MAX_REDIRECTS} times`);
    const next = new URL(res.headers.location ?? '', at);
    if (!transportAllowed(next, insecure)) {
      throw new GateError(
        'SOURCE_INSECURE_TRANSPORT',
        `${describeUrl(url)} redirected to plain http on ${next.host}`,
      );
    }
    at = next.toString();
  }
}

function expectOk(res: RawResponse): void {
  if (res.status < 200 || res.status >= 300) {
    throw new HttpClientError(
      'SOURCE_BAD_RESPONSE',
      `${describeUrl(res.url)} answered http ${res.status}`,
      { status: res.status },
    );
  }
}

export const badResponse = (message: string) => new HttpClientError('SOURCE_BAD_RESPONSE', message);
