import type { SourcesConfig } from '../config.js';
import { createFileSource } from './files.js';
import { createHttpClient, type HttpClient } from './http.js';
import type { CollectRequest, CollectResult, Evidence, Source } from './types.js';

/**
 * The sources a configuration names: bundle files and folders, an attestation store, a Rekor
 * log. Rekor's dsse entries never hold their envelope, so the log is asked last and joins its
 * entries with the envelopes the other sources found. A source marked optional reports its
 * failure as a rejection instead of stopping the decision. A store's, a registry's and a log's
 * modules are imported only when the configuration names one: a decision from files alone does
 * not load them (issue 11: the CLI's cold start).
 */
export async function defaultSources(
  config: SourcesConfig,
  extraBundles: string[] = [],
  http: HttpClient = sharedClient(),
  /** some subject was named as an image: its repository is searched even without `oci` */
  opts: { images?: boolean } = {},
): Promise<Source[]> {
  const found: Evidence[] = [];
  const first: Source[] = [];
  const paths = [...config.bundles, ...extraBundles];
  if (paths.length > 0) first.push(createFileSource({ paths }));
  if (config.store) {
    const { createStoreSource } = await import('./store.js');
    const s = config.store;
    const store = createStoreSource({
      url: s.url,
      http,
      token: s.token,
      predicateTypes: s.predicateTypes,
      timeoutMs: s.timeoutMs,
    });
    first.push(optional(store, s));
  }
  if (config.oci || opts.images) {
    const { createOciSource } = await import('./oci.js');
    const o = config.oci ?? { repositories: [] };
    const oci = createOciSource({ ...o, http, insecure: o.insecure ?? [] });
    first.push(optional(oci, o));
  }
  const pending = new Map<string, Array<Promise<unknown>>>();
  const sources = first.map((s) => remember(s, found, pending));
  if (config.rekor) {
    const { createRekorSource } = await import('./rekor.js');
    const r = config.rekor;
    const rekor = createRekorSource({
      url: r.url,
      http,
      envelopes: () => found,
      timeoutMs: r.timeoutMs,
    });
    sources.push(after(pending, optional(rekor, r)));
  }
  return sources;
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
