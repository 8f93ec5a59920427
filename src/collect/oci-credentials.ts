import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Environment } from '../config.js';
import { GateError } from '../errors.js';
import { plainHttpAllowed } from './oci-ref.js';

/**
 * Credentials for one registry, as the user already has them. The secret fields are never put in
 * a message: `source` says where they came from (e.g. `credHelpers ghcr.io
 * (docker-credential-gh)`), `id` tells two credentials apart (a hash, for cache keys).
 */
export type Credential = { source: string; id: string } & (
  | { kind: 'basic'; username: string; password: string }
  /** an OAuth2 refresh token (docker's `identitytoken`, a helper's `<token>` answer) */
  | { kind: 'identity'; token: string; basic?: { username: string; password: string } }
  /** a bearer token sent to the registry as it is (`registrytoken`, `sources.oci.tokenEnv`) */
  | { kind: 'bearer'; token: string }
);

export interface Keychain {
  /** the credentials for a registry host (`host[:port]`); undefined: none, read anonymously */
  resolve(host: string): Promise<Credential | undefined>;
  /** where the keychain looks, for a message that found nothing */
  readonly searched: string;
}

export interface KeychainOptions {
  /** a Docker config.json named in the gate's configuration (absolute): it must be readable */
  dockerConfig?: string;
  /** registry host → the name of the environment variable holding its bearer token */
  tokenEnv?: Record<string, string>;
  /** registry host → that token, read from the environment when the configuration was loaded */
  tokens?: Record<string, string>;
  /** DOCKER_CONFIG and HOME (where config.json is), PATH (credential helpers); default process.env */
  env?: Environment;
  /** per credential helper run (default 10 s) */
  helperTimeoutMs?: number;
}

/** Docker Hub's key in config.json, written so for historical reasons. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_HELPER_OUTPUT = 1024 * 1024;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The registry a config.json key names, the way docker reads its keys: `https://host`,
 * `http://host`, `https://host/v1/` and `host` are all `host`; Docker Hub's names are one.
 */
export function registryKey(key: string): string {
  const host = key
    .trim()
    .replace(/^https?:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
  return HUB_HOSTS.has(host) ? 'index.docker.io' : host;
}

/**
 * Where the user's credentials are, in the order they are asked:
 * 1. `tokens` (the gate's `sources.oci.tokenEnv`): a bearer token for the host;
 * 2. the Docker config.json (`dockerConfig`, else `$DOCKER_CONFIG/config.json`, else
 *    `$HOME/.docker/config.json`): `credHelpers[host]`, else `credsStore` (a
 *    `docker-credential-<name> get` run), else `auths[host]` (`registrytoken`, `identitytoken`,
 *    `auth` or `username`/`password`).
 * What a host resolves to is kept for the life of the keychain (a failure is not: the next
 * decision asks again).
 */
export function createKeychain(o: KeychainOptions = {}): Keychain {
  const env = o.env ?? process.env;
  const configPath = o.dockerConfig ?? defaultConfigPath(env);
  const tokens = normaliseKeys(o.tokens ?? {});
  const tokenEnv = normaliseKeys(o.tokenEnv ?? {});
  const cache = new Map<string, Promise<Credential | undefined>>();
  let config: DockerConfig | undefined;
  const loadConfig = () => (config ??= readDockerConfig(configPath, o.dockerConfig !== undefined));
  const resolve = async (host: string): Promise<Credential | undefined> => {
    const key = registryKey(host);
    const token = tokens[key];
    if (token !== undefined) {
      const variable = tokenEnv[key];
      const source = variable
        ? `environment variable ${variable} (sources.oci.tokenEnv)`
        : `the bearer token configured for ${key}`;
      return bearer(token.trim(), source);
    }
    const cfg = loadConfig();
    const helper = helperFor(cfg, key);
    if (helper) {
      const serverUrl = key === 'index.docker.io' ? DOCKER_HUB_KEY : host;
      return runHelper(
        helper.name,
        serverUrl,
        `${helper.where} (docker-credential-${helper.name})`,
        {
          env,
          timeoutMs: o.helperTimeoutMs ?? 10_000,
        },
      );
    }
    const entry = authsEntry(cfg, host, key);
    return entry ? fromAuthsEntry(entry, `auths ${key} (${cfg.path})`) : undefined;
  };
  return {
    searched: configPath
      ? `sources.oci.tokenEnv and ${configPath}`
      : 'sources.oci.tokenEnv (no docker config.json: neither DOCKER_CONFIG nor HOME is set)',
    resolve(host) {
      const key = host.toLowerCase();
      let c = cache.get(key);
      if (!c) {
        c = resolve(key);
        c.catch(() => cache.delete(key));
        cache.set(key, c);
      }
      return c;
    },
  };
}

/**
 * May credentials for `registry` go to this URL (the registry itself or its token realm)? Over
 * https, yes; over plain http only to a loopback host, or to the registry's own host when it is
 * configured insecure: never to another host across the network in clear.
 */
export function mayCarryCredentials(
  url: URL,
  registry: string,
  insecure: readonly string[],
): boolean {
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  if (plainHttpAllowed(url.host, [])) return true;
  return url.host.toLowerCase() === registry.toLowerCase() && plainHttpAllowed(registry, insecure);
}

/** `Basic` credentials as the Authorization header carries them (RFC 7617). */
export function basicAuthorization(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

interface AuthsEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface DockerConfig {
  path: string | undefined;
  auths: Record<string, AuthsEntry>;
  credHelpers: Record<string, string>;
  credsStore: string | undefined;
}

function defaultConfigPath(env: Environment): string | undefined {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  if (env.HOME) return path.join(env.HOME, '.docker', 'config.json');
  return undefined;
}

/** A named file must exist; the default one may be absent (then there are no credentials). */
function readDockerConfig(file: string | undefined, named: boolean): DockerConfig {
  const empty: DockerConfig = { path: file, auths: {}, credHelpers: {}, credsStore: undefined };
  if (!file) return empty;
  let bytes: Buffer;
  try {
    const st = statSync(file);
    if (st.size > MAX_CONFIG_BYTES) {
      throw authFailed(`docker config ${file} is ${st.size} bytes, over ${MAX_CONFIG_BYTES}`);
    }
    bytes = readFileSync(file);
  } catch (err) {
    if (err instanceof GateError) throw err;
    const code = (err as { code?: string }).code;
    if (!named && (code === 'ENOENT' || code === 'ENOTDIR')) return empty;
    throw authFailed(`cannot read docker config ${file}: ${(code ?? 'error').toLowerCase()}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    // never the parser's message: it may quote the file, secrets and all
    throw authFailed(`docker config ${file} is not valid json`);
  }
  if (!isObject(doc)) throw authFailed(`docker config ${file} is not a json object`);
  const auths = isObject(doc.auths) ? (doc.auths as Record<string, AuthsEntry>) : {};
  const credHelpers: Record<string, string> = {};
  if (isObject(doc.credHelpers)) {
    for (const [k, v] of Object.entries(doc.credHelpers)) {
      if (typeof v === 'string' && v !== '') credHelpers[registryKey(k)] ??= v;
    }
  }
  const credsStore =
    typeof doc.credsStore === 'string' && doc.credsStore !== '' ? doc.credsStore : undefined;
  return { path: file, auths, credHelpers, credsStore };
}

function helperFor(cfg: DockerConfig, key: string): { name: string; where: string } | undefined {
  const named = cfg.credHelpers[key];
  if (named) return { name: named, where: `credHelpers ${key}` };
  if (cfg.credsStore) return { name: cfg.credsStore, where: 'credsStore' };
  return undefined;
}

/** The entry written under the host exactly, else the first whose key names the same registry. */
function authsEntry(cfg: DockerConfig, host: string, key: string): AuthsEntry | undefined {
  const exact =
    cfg.auths[host] ?? (key === 'index.docker.io' ? cfg.auths[DOCKER_HUB_KEY] : undefined);
  const entry = exact ?? Object.entries(cfg.auths).find(([k]) => registryKey(k) === key)?.[1];
  return isObject(entry) ? entry : undefined;
}

function fromAuthsEntry(e: AuthsEntry, source: string): Credential | undefined {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const registryToken = str(e.registrytoken);
  if (registryToken) return bearer(registryToken, source);
  let basic: { username: string; password: string } | undefined;
  const auth = str(e.auth);
  if (auth) {
    basic = decodeAuth(auth);
    if (!basic) {
      throw authFailed(`${source}: auth is not base64 of username:password`);
    }
  } else if (str(e.username) && str(e.password)) {
    basic = { username: str(e.username)!, password: str(e.password)! };
  }
  const identity = str(e.identitytoken);
  if (identity) {
    return credential({ kind: 'identity', token: identity, ...(basic ? { basic } : {}) }, source);
  }
  return basic ? credential({ kind: 'basic', ...basic }, source) : undefined;
}

function decodeAuth(auth: string): { username: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth.trim())) return undefined;
  const text = Buffer.from(auth.trim(), 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/\0+$/, '') };
}

/**
 * docker-credential-helpers' protocol: `docker-credential-<name> get`, the server URL on stdin,
 * `{"ServerURL","Username","Secret"}` on stdout; "credentials not found" is no credentials, a
 * `<token>` username means the secret is an identity token. The helper's output is never quoted
 * in a message (a failing helper may still print secrets).
 */
function runHelper(
  name: string,
  serverUrl: string,
  source: string,
  o: { env: Environment; timeoutMs: number },
): Promise<Credential | undefined> {
  if (!HELPER_NAME.test(name)) {
    return Promise.reject(authFailed(`${source}: not a credential helper name`));
  }
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      ['get'],
      {
        env: { ...o.env },
        timeout: o.timeoutMs,
        maxBuffer: MAX_HELPER_OUTPUT,
        windowsHide: true,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          if (notFound(stdout) || notFound(stderr)) return resolve(undefined);
          return reject(helperFailed(err, program, source, o.timeoutMs));
        }
        if (notFound(stdout)) return resolve(undefined);
        let answer: unknown;
        try {
          answer = JSON.parse(stdout);
        } catch {
          return reject(authFailed(`credential helper ${program} (${source}) answered no json`));
        }
        if (!isObject(answer) || typeof answer.Secret !== 'string') {
          return reject(
            authFailed(`credential helper ${program} (${source}) answered no Username and Secret`),
          );
        }
        const username = typeof answer.Username === 'string' ? answer.Username : '';
        const secret = answer.Secret;
        if (secret === '') return resolve(undefined);
        if (username === '<token>')
          return resolve(credential({ kind: 'identity', token: secret }, source));
        resolve(credential({ kind: 'basic', username, password: secret }, source));
      },
    );
    child.stdin?.on('error', () => {}); // a helper that exits before reading its input
    child.stdin?.end(serverUrl);
  });
}

function notFound(out: string): boolean {
  return /^credentials not found\b/i.test(out.trim());
}

function helperFailed(
  err: Error & { code?: unknown; killed?: boolean; signal?: unknown },
  program: string,
  source: string,
  timeoutMs: number,
): GateError {
  const what = `credential helper ${program} (${source})`;
  if (err.code === 'ENOENT') return authFailed(`${what} is not on PATH`);
  if (err.code === 'EACCES') return authFailed(`${what} is not executable`);
  if (err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
    return authFailed(`${what} answered more than ${MAX_HELPER_OUTPUT} bytes`);
  }
  if (err.killed) return authFailed(`${what} did not answer within ${timeoutMs} ms`);
  if (typeof err.code === 'number') return authFailed(`${what} failed with exit code ${err.code}`);
  if (typeof err.signal === 'string') return authFailed(`${what} was killed by ${err.signal}`);
  return authFailed(`${what} could not be run`);
}

function bearer(token: string, source: string): Credential {
  if (token === '' || /[^\x21-\x7e]/.test(token)) {
    throw authFailed(`the bearer token from ${source} is not a valid header value`);
  }
  return credential({ kind: 'bearer', token }, source);
}

type Secret =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identity'; token: string; basic?: { username: string; password: string } }
  | { kind: 'bearer'; token: string };

/** Adds the source and an id: a hash of the secret, so two credentials never share a token. */
function credential(s: Secret, source: string): Credential {
  const material =
    s.kind === 'basic'
      ? `basic\0${s.username}\0${s.password}`
      : s.kind === 'identity'
        ? `identity\0${s.token}`
        : `bearer\0${s.token}`;
  const id = createHash('sha256').update(material).digest('hex').slice(0, 32);
  return { ...s, source, id };
}

function normaliseKeys(m: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) out[registryKey(k)] ??= v;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const authFailed = (message: string) => new GateError('SOURCE_AUTH_FAILED', message);
