import type { GateError } from '../errors.js';
import type { HttpClient } from './http.js';
import { bundlesOf } from './oci-bundle.js';
import { createOciClient, type OciClient, type OciClientOptions } from './oci-client.js';
import { createKeychain, type KeychainOptions } from './oci-credentials.js';
import { searchCosignTags } from './oci-cosign.js';
import {
  coded,
  takeEntry,
  referrersApi,
  referrersTagListing,
  type LayoutName,
  type Listing,
} from './oci-layouts.js';
import { sha256Hex as sha256 } from '../util/input.js';
import { DOCKER_LIST, indexEntries, OCI_INDEX, type Descriptor } from './oci-manifest.js';
import { describeRepository, parseRepository, type Repository } from './oci-ref.js';
import {
  emptyResult,
  type CollectRequest,
  type CollectResult,
  type PlatformManifest,
  type SearchReport,
  type Source,
} from './types.js';

const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** Without a `keychain`, one is made from the KeychainOptions (the user's docker config.json). */
export interface OciSourceOptions extends Omit<OciClientOptions, 'http'>, KeychainOptions {
  /** `host[:port]/name` repositories searched for every subject (cosign's COSIGN_REPOSITORY) */
  repositories: string[];
  /** search the repository of the image a subject was named as (default true) */
  searchImageRepository?: boolean;
  /** when the subject is an image index, search its platform manifests too (default false) */
  platforms?: boolean;
  http: HttpClient;
  /** more referrers than this for one subject in one layout is SOURCE_LIMIT_EXCEEDED (default 100) */
  maxReferrers?: number;
}

/** What one layout of one repository held for a subject (absent: no referrers API, no tag). */
export type LayoutReport = SearchReport & { layout: LayoutName };

export type OciCollectResult = CollectResult & { searched: LayoutReport[] };
/** A Source whose results also say what each layout held. */
export interface OciSource extends Source {
  collect(req: CollectRequest): Promise<OciCollectResult>;
  close(): Promise<void>;
}

/**
 * Evidence kept in OCI registries next to the image. The repositories are the image's own (when
 * the subject was named as an image) and the configured ones; in each, the referrers API and the
 * referrers tag schema are both searched (a registry may have gained the API after clients wrote
 * fallback tags; the same referrer found twice counts once), then cosign's legacy `.att` and
 * `.sig` tags. Each Sigstore bundle artifact or legacy layer found becomes evidence the verifier
 * checks, named where it was found: `oci:<host>/<name>@<subject>#<layout>:<digest>`; `searched`
 * says what each layout held. With `platforms`, an index's platform manifests are searched too.
 */
export function createOciSource(opts: OciSourceOptions): OciSource {
  const configured = opts.repositories.map((r) => parseRepository(r, opts.insecure));
  const name = `oci:${configured.length ? configured.map(describeRepository).join(',') : 'image repositories'}`;
  const client = createOciClient({ ...opts, keychain: opts.keychain ?? createKeychain(opts) });
  const maxReferrers = opts.maxReferrers ?? 100;
  return {
    name,
    close: () => client.close(),
    async collect(req) {
      const subject = `${req.subject.algorithm}:${req.subject.hex}`;
      const result: OciCollectResult = { ...emptyResult(), searched: [] };
      let repos: Repository[];
      try {
        repos = repositoriesFor(req, configured, opts);
      } catch (err) {
        const where = `oci:${req.image?.repository ?? 'image'}`;
        return { ...result, failures: [{ source: where, ...coded(err) }] };
      }
      const search: SearchOpts = { maxReferrers, signal: req.signal };
      for (const repo of repos) await searchRepository(client, repo, subject, search, result);
      if (opts.platforms) {
        const children = await platformManifests(client, repos, subject, search, result);
        for (const via of children) {
          const child = `${via.manifest.algorithm}:${via.manifest.hex}`;
          for (const repo of repos)
            await searchRepository(client, repo, child, { ...search, via }, result);
        }
      }
      return result;
    },
  };
}

/** The image's own repository first (unless configured off), then the configured ones, once each. */
function repositoriesFor(
  req: CollectRequest,
  configured: Repository[],
  opts: OciSourceOptions,
): Repository[] {
  const repos = [...configured];
  if (req.image && opts.searchImageRepository !== false) {
    const own = parseRepository(req.image.repository, opts.insecure);
    if (!repos.some((r) => describeRepository(r) === describeRepository(own))) repos.unshift(own);
  }
  return repos;
}

/** More platforms than this in one index is SOURCE_LIMIT_EXCEEDED: real indexes list a handful. */
const MAX_PLATFORMS = 64;

/**
 * The platform manifests of the subject when it is an image index, read from the first
 * repository that has it (the index's bytes are checked against the subject digest, so the list
 * is the one the digest names). Attestation manifests listed in the index (buildx writes them
 * with `vnd.docker.reference.type: attestation-manifest`) are not platforms.
 */
async function platformManifests(
  client: OciClient,
  repos: Repository[],
  subject: string,
  opts: SearchOpts,
  result: OciCollectResult,
): Promise<PlatformManifest[]> {
  for (const repo of repos) {
    let index;
    try {
      index = await client.manifest(repo, subject, opts.signal);
    } catch (err) {
      result.failures.push({ source: `oci:${describeRepository(repo)}@${subject}`, ...coded(err) });
      continue;
    }
    if (!index) continue;
    if (index.mediaType !== OCI_INDEX && index.mediaType !== DOCKER_LIST) return [];
    // An index without a manifests list is reported as this repository's failure: thrown, it
    // took the whole search with it, evidence found elsewhere included (test/fuzz, issue 12).
    let listed: ReturnType<typeof indexEntries>;
    try {
      listed = indexEntries(index.doc, `index ${subject}`);
    } catch (err) {
      result.failures.push({ source: `oci:${describeRepository(repo)}@${subject}`, ...coded(err) });
      return [];
    }
    const entries = listed.filter(
      (e): e is Descriptor =>
        !(e instanceof Error) &&
        e.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
    );
    if (entries.length > MAX_PLATFORMS) {
      result.failures.push({
        source: `oci:${describeRepository(repo)}@${subject}`,
        code: 'SOURCE_LIMIT_EXCEEDED',
        message: `index ${subject} lists more than ${MAX_PLATFORMS} manifests`,
      });
      return [];
    }
    const [alg, hex] = subject.split(':') as ['sha256', string];
    return entries.map((e) => {
      const [a, h] = e.digest.split(':') as ['sha256', string];
      const platform = platformOf(e);
      return {
        index: { algorithm: alg, hex },
        manifest: { algorithm: a, hex: h },
        ...(platform ? { platform } : {}),
      };
    });
  }
  return [];
}

function platformOf(d: Descriptor): string | undefined {
  const p = d.platform;
  if (!p?.os || !p.architecture) return undefined;
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

type SearchOpts = { maxReferrers: number; signal?: AbortSignal; via?: PlatformManifest };

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
      where: `oci:${where}`,
      layout,
      subject,
      outcome: 'listed',
      referrers: 0,
      bundles: 0,
      rejected: 0,
    };
    result.searched.push(report);
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
      await collectEntry(client, repo, subject, entry, origin, report, result, opts);
    }
  }
  // cosign's legacy sha256-<hex>.att and .sig tags (oci-cosign.ts): their own layout reports.
  await searchCosignTags(client, repo, subject, opts, result);
}

async function collectEntry(
  client: OciClient,
  repo: Repository,
  subject: string,
  entry: Descriptor | GateError,
  origin: string,
  report: LayoutReport,
  result: CollectResult,
  opts: SearchOpts,
): Promise<void> {
  const source = entry instanceof Error ? origin : `${origin}:${entry.digest}`;
  const via = opts.via ? { via: opts.via } : {};
  await takeEntry(entry, source, report, result, async (listed) =>
    (await bundlesOf(client, repo, subject, listed, opts.signal)).map((bytes) => ({
      id: sha256(bytes),
      source,
      kind: 'bundle' as const,
      bytes,
      ...via,
    })),
  );
}
