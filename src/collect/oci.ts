import { createHash } from 'node:crypto';
import { toGateError, type GateError } from '../errors.js';
import type { HttpClient } from './http.js';
import { bundlesOf } from './oci-bundle.js';
import { createOciClient, type OciClient, type OciClientOptions } from './oci-client.js';
import { referrersApi, referrersTagListing, type LayoutName, type Listing } from './oci-layouts.js';
import { type Descriptor } from './oci-manifest.js';
import { describeRepository, parseRepository, type Repository } from './oci-ref.js';
import { emptyResult, type CollectRequest, type CollectResult, type Source } from './types.js';

const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export interface OciSourceOptions extends Omit<OciClientOptions, 'http'> {
  /** `host[:port]/name` repositories holding the subject's attestations */
  repositories: string[];
  http: HttpClient;
  /** more referrers than this for one subject in one layout is SOURCE_LIMIT_EXCEEDED (default 100) */
  maxReferrers?: number;
}

/** What one layout of one repository held for a subject: the report of where the gate looked. */
export interface LayoutReport {
  repository: string;
  layout: LayoutName;
  /** listed: the layout exists; absent: no referrers API (404) or no fallback tag; failed: could not look */
  outcome: 'listed' | 'absent' | 'failed';
  referrers: number;
  bundles: number;
  rejected: number;
}

export type OciCollectResult = CollectResult & { layouts: LayoutReport[] };
/** A Source whose results also say what each layout held. */
export interface OciSource extends Source {
  collect(req: CollectRequest): Promise<OciCollectResult>;
  close(): Promise<void>;
}

/**
 * Evidence kept in OCI registries next to the image: for each repository, the referrers API and
 * the referrers tag schema are both searched (a registry may have gained the API after clients
 * wrote fallback tags; the same referrer found twice counts once), and each Sigstore bundle
 * artifact found becomes a bundle the verifier checks. Evidence names where it was found:
 * `oci:<host>/<name>@<subject>#<layout>:<referrer digest>`; `layouts` says what each layout held.
 */
export function createOciSource(opts: OciSourceOptions): OciSource {
  const repos = opts.repositories.map((r) => parseRepository(r, opts.insecure));
  const name = `oci:${repos.map(describeRepository).join(',')}`;
  const client = createOciClient(opts);
  const maxReferrers = opts.maxReferrers ?? 100;
  return {
    name,
    close: () => client.close(),
    async collect(req) {
      const subject = `${req.subject.algorithm}:${req.subject.hex}`;
      const result: OciCollectResult = { ...emptyResult(), layouts: [] };
      for (const repo of repos) {
        await searchRepository(client, repo, subject, { maxReferrers, signal: req.signal }, result);
      }
      return result;
    },
  };
}

type SearchOpts = { maxReferrers: number; signal?: AbortSignal };

async function searchRepository(
  client: OciClient,
  repo: Repository,
  subject: string,
  opts: SearchOpts,
  result: OciCollectResult,
): Promise<void> {
  const seen = new Set<string>();
  const where = describeRepository(repo);
  const listings: Array<[LayoutName, () => Promise<Listing>]> = [
    [
      'referrers-api',
      () => referrersApi(client, repo, subject, { ...opts, artifactType: BUNDLE_V03 }),
    ],
    ['referrers-tag', () => referrersTagListing(client, repo, subject, opts)],
  ];
  for (const [layout, list] of listings) {
    const report: LayoutReport = {
      repository: where,
      layout,
      outcome: 'listed',
      referrers: 0,
      bundles: 0,
      rejected: 0,
    };
    result.layouts.push(report);
    let listing: Listing;
    try {
      listing = await list();
    } catch (err) {
      report.outcome = 'failed';
      result.failures.push({ source: `oci:${where}#${layout}`, ...coded(err) });
      continue;
    }
    if (!listing.present) report.outcome = 'absent';
    const origin = `oci:${where}@${subject}#${layout}`;
    for (const entry of listing.entries) {
      report.referrers++;
      if (!(entry instanceof Error) && seen.has(entry.digest)) continue;
      if (!(entry instanceof Error)) seen.add(entry.digest);
      await collectEntry(client, repo, subject, entry, origin, report, result, opts.signal);
    }
  }
}

async function collectEntry(
  client: OciClient,
  repo: Repository,
  subject: string,
  entry: Descriptor | GateError,
  origin: string,
  report: LayoutReport,
  result: CollectResult,
  signal?: AbortSignal,
): Promise<void> {
  const source = entry instanceof Error ? origin : `${origin}:${entry.digest}`;
  try {
    if (entry instanceof Error) throw entry;
    for (const bytes of await bundlesOf(client, repo, subject, entry, signal)) {
      result.evidence.push({ id: sha256(bytes), source, kind: 'bundle', bytes });
      report.bundles++;
    }
  } catch (err) {
    const c = coded(err);
    // The registry failing mid-search is "could not look"; bad content is a rejection.
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

function coded(err: unknown): { code: GateError['code']; message: string } {
  const e = toGateError(err, 'SOURCE_BAD_RESPONSE');
  return { code: e.code, message: e.message };
}

const COULD_NOT_LOOK = new Set<GateError['code']>([
  'SOURCE_UNREACHABLE',
  'SOURCE_TIMEOUT',
  'SOURCE_BAD_RESPONSE',
  'SOURCE_AUTH_FAILED',
  'SOURCE_INSECURE_TRANSPORT',
]);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
