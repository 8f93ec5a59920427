import type { SourcesConfig } from '../config.js';
import { createFileCache, createFileSource } from './files.js';
import { createHttpClient, type HttpClient } from './http.js';
import type { CollectRequest, CollectResult, Evidence, Source } from './types.js';

/**
 * The sources a configuration names: bundle files and folders, an attestation store, a Rekor
 * log. Rekor's dsse entries never hold their envelope, so the log is asked last and joins its
 * entries with the envelopes the other sources found. A source marked optional reports its
 * failure as a rejection instead of stopping the decision. A store's, a registry's and a log's
 * modules are imported only when the configuration names one: a decision from files alone does
 * not load them (issue 11: the CLI's cold start).
 *
 * The sources are made once and serve every request (a server keeps the files it read, the
 * registry tokens it was given, the pooled connections); `forRequest` adds the request's own
 * bundle files and the per-request joining of the log's entries with the envelopes found.
 */
export interface SourcePlan {
  forRequest(extraBundles?: string[], opts?: { images?: boolean }): Promise<Source[]>;
  close(): Promise<void>;
}

export function createSourcePlan(
  config: SourcesConfig,
  http: HttpClient = sharedClient(),
): SourcePlan {
  const files = createFileCache();
  const configured = config.bundles.length
    ? createFileSource({ paths: config.bundles, cache: files })
    : undefined;
  let store: Promise<Source> | undefined;
  let oci: Promise<Source & { close?: () => Promise<void> }> | undefined;
  let rekor: Promise<(found: () => Evidence[]) => Source> | undefined;

  const storeSource = (s: NonNullable<SourcesConfig['store']>) =>
    (store ??= import('./store.js').then(({ createStoreSource }) =>
      optional(
        createStoreSource({
          url: s.url,
          http,
          token: s.token,
          predicateTypes: s.predicateTypes,
          timeoutMs: s.timeoutMs,
        }),
        s,
      ),
    ));
  const ociSource = () =>
    (oci ??= import('./oci.js').then(({ createOciSource }) => {
      const o = config.oci ?? { repositories: [] };
      const source = createOciSource({ ...o, http, insecure: o.insecure ?? [] });
      return { ...optional(source, o), close: source.close };
    }));
  // the log's source reads the envelopes this request's other sources found
  const rekorSource = (r: NonNullable<SourcesConfig['rekor']>) =>
    (rekor ??= import('./rekor.js').then(({ createRekorSource }) => {
      return (found: () => Evidence[]) =>
        optional(
          createRekorSource({ url: r.url, http, envelopes: found, timeoutMs: r.timeoutMs }),
          r,
        );
    }));

  return {
    async forRequest(extraBundles = [], opts = {}) {
      const found: Evidence[] = [];
      const first: Source[] = [];
      if (configured) first.push(configured);
      if (extraBundles.length) first.push(createFileSource({ paths: extraBundles, cache: files }));
      if (config.store) first.push(await storeSource(config.store));
      if (config.oci || opts.images) first.push(await ociSource());
      const pending = new Map<string, Array<Promise<unknown>>>();
      const sources = first.map((s) => remember(s, found, pending));
      if (config.rekor) {
        const log = (await rekorSource(config.rekor))(() => found);
        sources.push(after(pending, log));
      }
      return sources;
    },
    async close() {
      const o = await oci?.catch(() => undefined);
      await o?.close?.();
    },
  };
}

/** The sources for one request (createSourcePlan, used once). */
export async function defaultSources(
  config: SourcesConfig,
  extraBundles: string[] = [],
  http: HttpClient = sharedClient(),
  /** some subject was named as an image: its repository is searched even without `oci` */
  opts: { images?: boolean } = {},
): Promise<Source[]> {
  return createSourcePlan(config, http).forRequest(extraBundles, opts);
}

let client: HttpClient | undefined;
/** One pooled HTTP client for every source the configuration names. */
export function sharedClient(): HttpClient {
  return (client ??= createHttpClient());
}

type Pending = Map<string, Array<Promise<unknown>>>;

function remember(source: Source, found: Evidence[], pending: Pending): Source {
  return {
    name: source.name,
    collect(req) {
      const p = source.collect(req).then((r) => {
        found.push(...r.evidence);
        return r;
      });
      pending.set(req.subject.hex, [...(pending.get(req.subject.hex) ?? []), p]);
      return p;
    },
  };
}

/** Waits for the other sources of the same subject: the gate starts every source at once. */
function after(pending: Pending, source: Source): Source {
  return {
    name: source.name,
    async collect(req) {
      await Promise.allSettled(pending.get(req.subject.hex) ?? []);
      return source.collect(req);
    },
  };
}

function optional(source: Source, cfg: { optional?: boolean }): Source {
  if (!cfg.optional) return source;
  return {
    name: source.name,
    async collect(req: CollectRequest): Promise<CollectResult> {
      const r = await source.collect(req);
      const asRejections = r.failures.map((f) => ({
        id: '',
        source: f.source,
        code: f.code,
        message: `optional source failed: ${f.message}`,
      }));
      return { ...r, rejected: [...r.rejected, ...asRejections], failures: [] };
    },
  };
}
