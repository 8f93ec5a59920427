import { createRequire } from 'node:module';
import path from 'node:path';
import { GateError } from './errors.js';
import { isPlainObject, readBoundedFile, sha256Hex } from './util/input.js';
import { validatorFor } from './util/schemas.js';
import type { IdentityRule, TrustedKey } from './verify/types.js';
import { sinksConfig, type SinkConfig } from './notify/sink-config.js';

export interface HttpSourceConfig {
  url: string;
  /** the name of the environment variable holding the bearer token (never the token itself) */
  tokenEnv?: string;
  /** the token, read from that variable when the configuration was loaded */
  token?: string;
  optional?: boolean;
  timeoutMs?: number;
}

/** Where evidence is looked for: what the collect step is given. */
export interface SourcesConfig {
  bundles: string[];
  rekor?: HttpSourceConfig;
  store?: StoreSourceConfig;
  oci?: OciSourceConfig;
}

/** The GitHub attestations API (or a store speaking it). */
export interface StoreSourceConfig extends HttpSourceConfig {
  /** GitHub's `predicate_type` filter, one query per type; unset: every attestation */
  predicateTypes?: string[];
}

/** OCI registries searched for a subject's attestations (referrers API, referrers tag schema). */
export interface OciSourceConfig {
  /** `host[:port]/name`, searched for every subject; plain http only for loopback and `insecure` */
  repositories: string[];
  /** search the repository of the image a subject was named as (default true) */
  searchImageRepository?: boolean;
  /** search the platform manifests of an image index decided on (default false) */
  platforms?: boolean;
  insecure?: string[];
  optional?: boolean;
  timeoutMs?: number;
  maxReferrers?: number;
  /** a Docker config.json (resolved against the config file); default: DOCKER_CONFIG, then HOME */
  dockerConfig?: string;
  /** registry host → the name of the environment variable holding a bearer token for it */
  tokenEnv?: Record<string, string>;
  /** registry host → that token, read from the environment when the configuration was loaded */
  tokens?: Record<string, string>;
  /** the environment loaded with: DOCKER_CONFIG and HOME locate config.json, PATH its helpers */
  env?: Environment;
}

/** The process environment, handed to the loader: secrets are named in the file, read from here. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The gate's configuration after loading: paths resolved, keys read, defaults filled. */
export interface GateConfig {
  trustedRoot?: string;
  identities?: IdentityRule[];
  keys: TrustedKey[];
  sources: SourcesConfig;
  policy: { path?: string; config: Record<string, unknown> };
  mode: 'enforce' | 'dry-run';
  /** one deadline per decision (ms): bounds every source, retries and Retry-After waits included */
  deadlineMs: number;
  /** remembered verification results: bounds and lifetimes (maxEntries 0: off) */
  verifyCache: { maxEntries?: number; ttlMs?: number; failureTtlMs?: number };
  ledger: {
    backend: 'sqlite' | 'postgres' | 'jsonl';
    path: string;
    /** postgres connection url, read from the environment (never written in the file) */
    url?: string;
    checkpointKeyPem?: string;
    publicKeyPem?: string;
    checkpointEvery?: { records?: number; seconds?: number };
    /** JSON Lines file each signed checkpoint is appended to as it is committed */
    checkpointLog?: string;
  };
  notify: { webhooks: Array<{ url: string; token?: string }>; outbox: string };
  /** where every recorded decision is also streamed (src/notify/sinks.ts) */
  sinks: SinkConfig[];
  /** gate serve: dry-run over http, decisions without a token beyond loopback, load shedding */
  server: {
    allowDryRun: boolean;
    openDecisions: boolean;
    load: { maxConcurrent?: number; maxQueue?: number; maxQueueWaitMs?: number };
  };
  /** the admission webhook: kinds that may carry no pod spec, the decision deadline */
  admission: { exemptKinds: string[]; deadlineMs?: number };
  /** signs verification summaries for allowed decisions (promotion evidence) */
  vsa?: { keyPem: string; policyUri: string };
  /** sha256 hex of the configuration as written (or of the defaults): recorded in decisions */
  digest: string;
}

// yaml is loaded with the first configuration file, not on import: a command without one does
// not pay for it (issue 11: the CLI's cold start). It is CommonJS under Node, required here.
function parseYAML(text: string, options: { maxAliasCount: number }): unknown {
  return (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text, options);
}

/** Below Kubernetes' default webhook timeout (10 s), with room to verify, decide and record. */
export const DEFAULT_DEADLINE_MS = 8_000;

/**
 * Loads gate.yaml (or JSON); every mistake is a CONFIG_INVALID error naming where it is. Paths
 * are relative to the file (or to `cwd` without one); tokens and the PostgreSQL url are read from
 * `env` (default: this process's environment), never from the file.
 */
export function loadConfig(
  file?: string,
  opts: { cwd?: string; env?: Environment } = {},
): GateConfig {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  if (file === undefined) return normalise({}, cwd, sha256Hex('{}'), 'config', env);
  const full = path.resolve(cwd, file);
  const bytes = readBoundedFile(full, 1024 * 1024, 'config');
  let doc: unknown;
  try {
    doc = parseYAML(bytes.toString('utf8'), { maxAliasCount: 100 });
  } catch (err) {
    throw new GateError('CONFIG_INVALID', `config ${file} is not valid yaml: ${firstLine(err)}`, {
      cause: err,
    });
  }
  return normalise(doc ?? {}, path.dirname(full), sha256Hex(bytes), file, env);
}

/** Checks and completes a parsed configuration; pure: the environment is handed in. */
export function normalise(
  doc: unknown,
  base: string,
  digest: string,
  name = 'config',
  env: Environment = {},
): GateConfig {
  const validate = validatorFor('gate-config.schema.json');
  if (!validate(doc)) {
    const e = validate.errors?.[0];
    throw new GateError(
      'CONFIG_INVALID',
      `${name} ${e?.instancePath || '/'}: ${e?.message ?? 'is invalid'}`,
    );
  }
  const c = doc as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const at = (p: string) => path.resolve(base, p);
  return {
    trustedRoot: c.trustedRoot ? at(c.trustedRoot) : undefined,
    identities: c.identities,
    keys: (c.keys ?? []).map(
      (k: { path?: string; pem?: string; hint?: string; transparency?: string }) => ({
        pem: k.pem ?? readBoundedFile(at(k.path!), 64 * 1024, 'key').toString('utf8'),
        ...(k.hint ? { hint: k.hint } : {}),
        ...(k.transparency === 'optional' ? { transparency: 'optional' as const } : {}),
      }),
    ),
    sources: {
      bundles: (c.sources?.bundles ?? []).map(at),
      ...(c.sources?.rekor ? { rekor: withToken(c.sources.rekor, env) } : {}),
      ...(c.sources?.store ? { store: withToken(c.sources.store, env) } : {}),
      ...(c.sources?.oci
        ? { oci: withCredentials({ repositories: [], ...c.sources.oci }, at, env) }
        : {}),
    },
    policy: {
      path: c.policy?.path ? at(c.policy.path) : undefined,
      config: c.policy?.config ?? {},
    },
    mode: c.mode ?? 'enforce',
    deadlineMs: c.deadlineMs ?? DEFAULT_DEADLINE_MS,
    verifyCache: c.verifyCache ?? {},
    ledger: ledgerConfig(c.ledger ?? {}, at, env),
    ...(c.vsa
      ? {
          vsa: {
            keyPem: readBoundedFile(at(c.vsa.key), 64 * 1024, 'verification summary key').toString(
              'utf8',
            ),
            policyUri: c.vsa.policyUri ?? 'https://gate.dev/policies',
          },
        }
      : {}),
    notify: {
      webhooks: (c.notify?.webhooks ?? []).map((w: { url: string; tokenEnv?: string }) => ({
        url: w.url,
        ...(w.tokenEnv && env[w.tokenEnv] ? { token: env[w.tokenEnv] } : {}),
      })),
      outbox: at(c.notify?.outbox ?? '.gate/outbox.jsonl'),
    },
    sinks: sinksConfig(c.sinks ?? [], env),
    server: {
      allowDryRun: c.server?.allowDryRun === true,
      openDecisions: c.server?.openDecisions === true,
      load: { ...(c.server?.load ?? {}) },
    },
    admission: {
      exemptKinds: c.admission?.exemptKinds ?? [],
      ...(c.admission?.deadlineMs ? { deadlineMs: c.admission.deadlineMs } : {}),
    },
    digest,
  };
}

function ledgerConfig(
  l: Record<string, any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  at: (p: string) => string,
  env: Environment,
): GateConfig['ledger'] {
  const backend = l.backend ?? 'sqlite';
  const pem = (p: string | undefined, what: string) =>
    p === undefined ? undefined : readBoundedFile(at(p), 64 * 1024, what).toString('utf8');
  const url = backend === 'postgres' ? env[l.urlEnv ?? 'GATE_LEDGER_URL'] : undefined;
  if (backend === 'postgres' && !url) {
    throw new GateError(
      'CONFIG_INVALID',
      `ledger: set ${l.urlEnv ?? 'GATE_LEDGER_URL'} to the postgres url`,
    );
  }
  return {
    backend,
    path: at(l.path ?? (backend === 'jsonl' ? '.gate/ledger.jsonl' : '.gate/ledger.db')),
    ...(url ? { url } : {}),
    ...(l.checkpointKey ? { checkpointKeyPem: pem(l.checkpointKey, 'checkpoint key') } : {}),
    ...(l.publicKey ? { publicKeyPem: pem(l.publicKey, 'ledger public key') } : {}),
    ...(l.checkpointEvery ? { checkpointEvery: l.checkpointEvery } : {}),
    ...(l.checkpointLog ? { checkpointLog: at(l.checkpointLog) } : {}),
  };
}

/** Registry credentials: the config.json path resolved, tokens read from the variables named. */
function withCredentials(
  o: OciSourceConfig,
  at: (p: string) => string,
  env: Environment,
): OciSourceConfig {
  const tokens: Record<string, string> = {};
  for (const [host, variable] of Object.entries(o.tokenEnv ?? {})) {
    const token = env[variable];
    if (token) tokens[host.toLowerCase()] = token;
  }
  return {
    ...o,
    ...(o.dockerConfig ? { dockerConfig: at(o.dockerConfig) } : {}),
    ...(Object.keys(tokens).length > 0 ? { tokens } : {}),
    env,
  };
}

function withToken(s: HttpSourceConfig, env: Environment): HttpSourceConfig {
  const token = s.tokenEnv ? env[s.tokenEnv] : undefined;
  return token ? { ...s, token } : s;
}

/** Objects merge key by key; arrays and scalars replace (so a list of builders is the user's own). */
export function mergeData(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeData(base[k], v);
  return out;
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err)
    .split('\n')[0]!
    .toLowerCase();
}
