import { GateError, toGateError } from '../errors.js';
import { isPlainObject, sha256Hex } from '../util/input.js';
import { describeUrl, HttpClientError, mapLimit, type HttpClient } from './http.js';
import { entryBundle, type EntryOptions } from './store-bundle.js';
import type { CollectRequest, CollectResult, Source } from './types.js';

export interface StoreSourceOptions {
  /** the API base, e.g. https://api.github.com/repos/OWNER/REPO or https://api.github.com/orgs/ORG */
  url: string;
  http: HttpClient;
  /** more attestations than this for one digest is a SOURCE_LIMIT_EXCEEDED failure */
  maxEvidence?: number;
  /** pages followed; a further page is a SOURCE_LIMIT_EXCEEDED failure */
  maxPages?: number;
  /** sent as `Authorization: Bearer` to the API only, never to a bundle_url; never in a message */
  token?: string;
  /** GitHub's `predicate_type` filter, one query per type; unset: every attestation */
  predicateTypes?: string[];
  /** a bundle fetched from a bundle_url, compressed and uncompressed (default 16 MiB) */
  maxBundleBytes?: number;
  /** per bundle_url request (default 10 s) */
  timeoutMs?: number;
}

interface Page {
  url: string;
  entries: unknown[];
}

/**
 * An attestation store speaking the GitHub attestations API: GET {url}/attestations/{alg}:{hex},
 * where url is a /repos/{owner}/{repo}, /orgs/{org} or /users/{user} base (the three answer
 * alike), paginated with a Link header. Too many results fail loudly rather than being cut: evidence
 * silently dropped could be the attestation a deny rule needs to see.
 */
export function createStoreSource(opts: StoreSourceOptions): Source {
  const base = opts.url.replace(/\/+$/, '');
  const name = `store:${describeUrl(base)}`;
  const headers: Record<string, string> = {
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
  };
  const limits = { maxEvidence: opts.maxEvidence ?? 100, maxPages: opts.maxPages ?? 10 };
  const entries: EntryOptions = {
    http: opts.http,
    maxBundleBytes: opts.maxBundleBytes ?? 16 * 1024 * 1024,
    timeoutMs: opts.timeoutMs ?? 10_000,
  };
  return {
    name,
    async collect(req: CollectRequest): Promise<CollectResult> {
      const digest = `${base}/attestations/${req.subject.algorithm}:${req.subject.hex}`;
      const api = { http: opts.http, ...limits, headers, signal: req.signal };
      try {
        const result: CollectResult = { evidence: [], rejected: [], failures: [] };
        for (const query of queries(digest, opts.predicateTypes)) {
          const pages = await fetchPages(query.url, api);
          const where = `store:${describeUrl(digest)}${query.label}`;
          await addEntries(result, pages, where, { ...entries, signal: req.signal });
        }
        return result;
      } catch (err) {
        const e = toGateError(err, 'SOURCE_BAD_RESPONSE');
        return {
          evidence: [],
          rejected: [],
          failures: [{ source: name, code: e.code, message: e.message }],
        };
      }
    },
  };
}

/**
 * GitHub's list endpoints take one `predicate_type` per request (REST docs, "List attestations"),
 * so several types are several queries; their results are merged and deduplicated.
 */
function queries(digest: string, types: string[] | undefined) {
  if (!types || types.length === 0) return [{ url: digest, label: '' }];
  return types.map((t) => ({
    url: `${digest}?predicate_type=${encodeURIComponent(t)}`,
    label: `[${t}]`,
  }));
}

interface FetchOptions {
  http: HttpClient;
  maxEvidence: number;
  maxPages: number;
  headers: Record<string, string>;
  signal: AbortSignal | undefined;
}

async function fetchPages(first: string, o: FetchOptions): Promise<Page[]> {
  const pages: Page[] = [];
  let count = 0;
  for (let url: string | undefined = first; url !== undefined;) {
    if (pages.length === o.maxPages) {
      throw new GateError(
        'SOURCE_LIMIT_EXCEEDED',
        `${describeUrl(first)} has more than ${o.maxPages} pages of attestations`,
      );
    }
    let res;
    try {
      res = await o.http.requestJSON('GET', url, { headers: o.headers, signal: o.signal });
    } catch (err) {
      // GitHub answers 404 for a digest it holds no attestations for: nothing found, not a failure.
      if (err instanceof HttpClientError && err.status === 404 && pages.length === 0) return [];
      throw err;
    }
    const entries = attestationsOf(res.body, url);
    count += entries.length;
    if (count > o.maxEvidence) {
      throw new GateError(
        'SOURCE_LIMIT_EXCEEDED',
        `${describeUrl(first)} holds more than ${o.maxEvidence} attestations`,
      );
    }
    pages.push({ url, entries });
    url = nextPage(res.headers.link, url, first);
  }
  return pages;
}

function attestationsOf(body: unknown, url: string): unknown[] {
  if (!isPlainObject(body) || !Array.isArray(body.attestations)) {
    throw new GateError(
      'SOURCE_BAD_RESPONSE',
      `${describeUrl(url)} answered without an attestations list`,
    );
  }
  return body.attestations;
}

/**
 * The rel="next" target of a Link header (RFC 8288 section 3), resolved against the page. It must
 * stay on the store's origin: the bearer token goes with every page request.
 */
export function nextPage(
  link: string | undefined,
  pageUrl: string,
  first: string,
): string | undefined {
  if (!link) return undefined;
  for (const [, target, params] of link.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params ?? '');
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (!rels.includes('next')) continue;
    const next = new URL(target ?? '', pageUrl);
    if (next.origin !== new URL(first).origin) {
      throw new GateError(
        'SOURCE_BAD_RESPONSE',
        `${describeUrl(pageUrl)} links its next page to another origin (${next.origin})`,
      );
    }
    return next.href;
  }
  return undefined;
}

/**
 * Each entry's bundle (inline ones re-serialised from the parsed response, fetched ones as
 * decoded); a bundle seen twice, also across queries, counts once.
 */
async function addEntries(
  result: CollectResult,
  pages: Page[],
  where: string,
  o: EntryOptions,
): Promise<void> {
  const all = pages.flatMap((p) => p.entries.map((entry) => ({ entry, page: p.url })));
  const found = await mapLimit(all, 4, ({ entry, page }, i) =>
    entryBundle(entry, `attestation ${i} from ${describeUrl(page)}`, o),
  );
  const seen = new Set(result.evidence.map((e) => e.id));
  found.forEach((f, i) => {
    const source = `${where}#${i}`;
    if (!('bytes' in f)) {
      result.rejected.push({ id: '', source, code: f.code, message: f.message });
      return;
    }
    const id = sha256Hex(f.bytes);
    if (!seen.has(id)) result.evidence.push({ id, source, kind: 'bundle', bytes: f.bytes });
    seen.add(id);
  });
}
