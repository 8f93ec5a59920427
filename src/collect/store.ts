import { GateError, toGateError } from '../errors.js';
import { isPlainObject, sha256Hex } from '../util/input.js';
import { describeUrl, HttpClientError, type HttpClient } from './http.js';
import type { CollectRequest, CollectResult, Source } from './types.js';

export interface StoreSourceOptions {
  /** the API base, e.g. https://api.github.com/repos/OWNER/REPO or https://api.github.com/orgs/ORG */
  url: string;
  http: HttpClient;
  /** more attestations than this for one digest is a SOURCE_LIMIT_EXCEEDED failure */
  maxEvidence?: number;
  /** pages followed; a further page is a SOURCE_LIMIT_EXCEEDED failure */
  maxPages?: number;
  /** sent as `Authorization: Bearer`; never written to a message */
  token?: string;
}

interface Page {
  url: string;
  entries: unknown[];
}

/**
 * An attestation store speaking the GitHub attestations API: GET {url}/attestations/{alg}:{hex},
 * paginated with a Link header. Too many results fail loudly rather than being cut: evidence
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
  return {
    name,
    async collect(req: CollectRequest): Promise<CollectResult> {
      const first = `${base}/attestations/${req.subject.algorithm}:${req.subject.hex}`;
      try {
        const pages = await fetchPages(first, {
          http: opts.http,
          ...limits,
          headers,
          signal: req.signal,
        });
        return toResult(pages, `store:${describeUrl(first)}`);
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

/** Each entry's bundle, re-serialised from the parsed response; duplicates counted once. */
function toResult(pages: Page[], where: string): CollectResult {
  const result: CollectResult = { evidence: [], rejected: [], failures: [] };
  const seen = new Set<string>();
  let index = 0;
  for (const page of pages) {
    for (const entry of page.entries) {
      const source = `${where}#${index++}`;
      const bundle = isPlainObject(entry) ? entry.bundle : undefined;
      if (!isPlainObject(bundle)) {
        // Newer GitHub responses may hold only a bundle_url to a compressed copy; not fetched.
        const message = `attestation ${index - 1} from ${describeUrl(page.url)} has no inline bundle`;
        result.rejected.push({ id: '', source, code: 'EVIDENCE_CONTENT_MISSING', message });
        continue;
      }
      const bytes = Buffer.from(JSON.stringify(bundle), 'utf8');
      const id = sha256Hex(bytes);
      if (!seen.has(id)) result.evidence.push({ id, source, kind: 'bundle', bytes });
      seen.add(id);
    }
  }
  return result;
}
