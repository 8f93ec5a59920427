import { GateError, toGateError, type GateErrorCode } from '../errors.js';
import { clip } from '../util/input.js';
import { HttpClientError } from './http-support.js';
import { badResponse, type OciClient } from './oci-client.js';
import { indexEntries, OCI_INDEX, parseManifestJSON, type Descriptor } from './oci-manifest.js';
import { referrersTag, type Repository } from './oci-ref.js';
import type { CollectResult, Evidence, SearchReport } from './types.js';

/** Where evidence about a subject is listed: the referrers API, the referrers tag schema, and
 * cosign's legacy `sha256-<hex>.att` / `.sig` tags (oci-cosign.ts). */
export type LayoutName = 'referrers-api' | 'referrers-tag' | 'cosign-att' | 'cosign-sig';

/** One listing: absent (the layout is not there) is kept apart from empty (it is, with nothing). */
export interface Listing {
  layout: LayoutName;
  /** false: the registry has no referrers API (404), or no fallback tag */
  present: boolean;
  entries: Array<Descriptor | GateError>;
}

const MAX_PAGES = 100;

/**
 * The OCI 1.1 referrers API, every page (`Link: <...>; rel="next"`, distribution spec 1.1).
 * The `artifactType` filter is asked for, as a saving where the registry honours it; what each
 * referrer holds is checked later whatever the registry says. A 404 means no API (spec: a
 * registry with the API never answers 404 here); any other failure is "could not look".
 */
export async function referrersApi(
  client: OciClient,
  repo: Repository,
  subject: string,
  opts: { artifactType?: string; maxReferrers: number; signal?: AbortSignal },
): Promise<Listing> {
  const query = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : '';
  let path: string | undefined = `referrers/${subject}${query}`;
  const entries: Listing['entries'] = [];
  const seen = new Set<string>();
  while (path !== undefined) {
    if (seen.has(path) || seen.size >= MAX_PAGES)
      throw badResponse(`referrers of ${subject}: pages loop or exceed ${MAX_PAGES}`);
    seen.add(path);
    const res = await client.get(repo, path, OCI_INDEX, opts.signal);
    if (res.status === 404 && seen.size === 1)
      return { layout: 'referrers-api', present: false, entries };
    if (res.status < 200 || res.status >= 300) {
      throw new HttpClientError(
        'SOURCE_BAD_RESPONSE',
        `referrers of ${subject} in ${repo.host}/${repo.name}: http ${res.status}`,
        { status: res.status },
      );
    }
    entries.push(
      ...indexEntries(
        parseManifestJSON(res.bytes, `referrers list of ${subject}`),
        `referrers list of ${subject}`,
      ),
    );
    if (entries.length > opts.maxReferrers) throw tooMany(subject, opts.maxReferrers);
    path = nextPage(res.headers.link, repo);
  }
  return { layout: 'referrers-api', present: true, entries };
}

/** The referrers tag schema: an index tagged `sha256-<hex>`, written by clients for registries
 * without the API (GHCR today). Its bytes are checked like any manifest's. */
export async function referrersTagListing(
  client: OciClient,
  repo: Repository,
  subject: string,
  opts: { maxReferrers: number; signal?: AbortSignal },
): Promise<Listing> {
  const tag = referrersTag(subject);
  const m = await client.manifest(repo, tag, opts.signal);
  if (!m) return { layout: 'referrers-tag', present: false, entries: [] };
  if (m.mediaType !== OCI_INDEX) {
    throw new GateError(
      'OCI_MANIFEST_INVALID',
      `tag ${tag} holds ${m.mediaType}, not an image index`,
    );
  }
  const entries = indexEntries(m.doc, `referrers tag ${tag}`);
  if (entries.length > opts.maxReferrers) throw tooMany(subject, opts.maxReferrers);
  return { layout: 'referrers-tag', present: true, entries };
}

/** The next page, only on the same registry: a Link elsewhere would take the token with it. */
function nextPage(link: string | undefined, repo: Repository): string | undefined {
  const m = link ? /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link) : null;
  if (!m) return undefined;
  const next = new URL(m[1]!, `${repo.base}/v2/${repo.name}/`);
  const prefix = `/v2/${repo.name}/`;
  if (next.origin !== new URL(repo.base).origin || !next.pathname.startsWith(prefix)) {
    throw badResponse(
      `referrers next page ${next.origin}${next.pathname} is outside ${repo.host}/${repo.name}`,
    );
  }
  return next.pathname.slice(prefix.length) + next.search;
}

const tooMany = (subject: string, max: number) =>
  new GateError('SOURCE_LIMIT_EXCEEDED', `more than ${max} referrers of ${subject}`);

/** A failure as a source reports it: coded, a foreign error read as a bad response. */
export function coded(err: unknown): { code: GateErrorCode; message: string } {
  const e = toGateError(err, 'SOURCE_BAD_RESPONSE');
  // One printable line: messages quote what the registry served (a media type, an artifact
  // type), which may hold line breaks (found by test/fuzz, issue 12).
  return { code: e.code, message: clip(e.message, 1000) };
}

/** The codes that mean the registry failed (could not look), not that its content is bad. */
const COULD_NOT_LOOK = new Set<GateErrorCode>([
  'SOURCE_UNREACHABLE',
  'SOURCE_TIMEOUT',
  'SOURCE_BAD_RESPONSE',
  'SOURCE_AUTH_FAILED',
  'SOURCE_INSECURE_TRANSPORT',
]);

/**
 * One listed entry (a referrer, a legacy layer) turned into evidence by `produce`: each piece is
 * counted in the layout's report; the registry failing mid-search is "could not look" (the
 * layout failed), bad content a rejection of that entry.
 */
export async function takeEntry(
  entry: Descriptor | GateError,
  source: string,
  report: SearchReport,
  result: CollectResult,
  produce: (listed: Descriptor) => Promise<Evidence[]>,
): Promise<void> {
  try {
    if (entry instanceof Error) throw entry;
    for (const e of await produce(entry)) {
      result.evidence.push(e);
      report.bundles++;
    }
  } catch (err) {
    const c = coded(err);
    if (COULD_NOT_LOOK.has(c.code)) {
      report.outcome = 'failed';
      result.failures.push({ source, ...c });
      return;
    }
    report.rejected++;
    const id = entry instanceof Error ? '' : entry.digest.slice(entry.digest.indexOf(':') + 1);
    result.rejected.push({ id, source, ...c });
  }
}
