import { createHash } from 'node:crypto';
import { GateError, toGateError } from '../errors.js';
import {
  dsseEntryBundle,
  indexEnvelopes,
  intotoBundle,
  type EnvelopeIndex,
} from './rekor-content.js';
import { decodeBody, leafHashOf, malformed, parseEntry } from './rekor-entry.js';
import { FAILED, fetchEntries, search, type Fetched, type Log } from './rekor-fetch.js';
import { createHttpClient, type HttpClient, type RetryPolicy } from './http.js';
import {
  emptyResult,
  type CollectRequest,
  type CollectResult,
  type Evidence,
  type Source,
} from './types.js';

export interface RekorSourceOptions {
  /** the log's base URL, e.g. https://rekor.sigstore.dev */
  url: string;
  /** the HTTP client to share (it is not closed with the source); default: the source's own */
  http?: HttpClient;
  /** more entry ids than this for one subject is a SOURCE_LIMIT_EXCEEDED failure (default 100) */
  maxEntries?: number;
  /** entry requests in flight at once (default 4) */
  concurrency?: number;
  /** per HTTP attempt (default 10 s) */
  timeoutMs?: number;
  /** envelopes other sources found: dsse entries (and intoto ones without data) are joined to them */
  envelopes?: () => Evidence[] | Promise<Evidence[]>;
  /** retries on 5xx, 429 and dropped connections (default 2), first backoff (default 250 ms) */
  retries?: number;
  retryDelayMs?: number;
  /** largest response body (default 8 MiB) */
  maxResponseBytes?: number;
}

export type RekorSource = Source & { close(): Promise<void> };

const MiB = 1024 * 1024;

/**
 * Evidence from a Rekor v1 log: entries indexed under the subject's digest, each rebuilt into a
 * Sigstore bundle the verifier checks like any other (the log's proofs are not checked here).
 * "Could not look" is a failure, never an empty result; an entry that cannot become a
 * verifiable attestation is a rejection naming the entry, never silently dropped.
 */
export function createRekorSource(opts: RekorSourceOptions): RekorSource {
  const base = opts.url.replace(/\/+$/, '');
  const name = `rekor:${base}`;
  const concurrency = opts.concurrency ?? 4;
  // The log's own policy, sent with every request: a shared client's defaults do not change it.
  const policy: RetryPolicy = {
    timeoutMs: opts.timeoutMs ?? 10_000,
    retries: opts.retries ?? 2,
    backoffMs: opts.retryDelayMs ?? 250,
    maxBytes: opts.maxResponseBytes ?? 8 * MiB,
    maxRetryAfterMs: 10_000,
  };
  const http = opts.http ?? createHttpClient({ ...policy, concurrency });
  const log: Log = { base, http, policy, concurrency, name };
  return {
    name,
    close: async () => {
      if (http !== opts.http) await http.close();
    },
    async collect(req: CollectRequest): Promise<CollectResult> {
      const result = emptyResult();
      const fail = (err: unknown) =>
        result.failures.push({ source: name, ...codeAndMessage(err, 'SOURCE_BAD_RESPONSE') });
      let ids: string[];
      try {
        ids = await search(log, req.subject, req.signal);
      } catch (err) {
        fail(err);
        return result;
      }
      const max = opts.maxEntries ?? 100;
      if (ids.length > max) {
        fail(
          new GateError(
            'SOURCE_LIMIT_EXCEEDED',
            `${name} lists ${ids.length} entries for ${req.subject.algorithm}:${req.subject.hex}, over the limit of ${max}`,
          ),
        );
        return result;
      }
      const fetched = await fetchEntries(log, ids, req.signal);
      fetched.failures.forEach(fail);
      await rebuildAll(fetched, name, lazyIndex(opts.envelopes), result);
      return result;
    },
  };
}

async function rebuildAll(
  fetched: Fetched,
  name: string,
  index: () => Promise<EnvelopeIndex>,
  result: CollectResult,
): Promise<void> {
  for (const { uuid, raw } of fetched.entries.values()) {
    if (raw === FAILED) continue;
    const source = `${name}#${uuid}`;
    try {
      const bytes = await rebuild(uuid, raw, index);
      const id = createHash('sha256').update(bytes).digest('hex');
      result.evidence.push({ id, source, kind: 'bundle', bytes });
    } catch (err) {
      const { code, message } = codeAndMessage(err, 'EVIDENCE_MALFORMED');
      result.rejected.push({ id: leafHashOf(uuid), source, code, message });
    }
  }
}

async function rebuild(uuid: string, raw: unknown, index: () => Promise<EnvelopeIndex>) {
  const entry = parseEntry(uuid, raw);
  const body = decodeBody(entry);
  switch (`${body.kind}:${body.apiVersion}`) {
    case 'intoto:0.0.2':
      // Other sources are asked only when the log did not keep the statement.
      return intotoBundle(entry, body, entry.attestationData ? new Map() : await index());
    case 'dsse:0.0.1':
      return dsseEntryBundle(entry, body, await index());
  }
  if (body.kind === 'hashedrekord') {
    throw new GateError(
      'EVIDENCE_NOT_ATTESTATION',
      `hashedrekord entry ${uuid} is a signature over the artifact itself, not an attestation: no statement a policy can use yet`,
    );
  }
  throw malformed(
    `entry ${uuid} is ${body.kind} ${body.apiVersion}: not an attestation kind the gate reads`,
  );
}

/** Other sources' envelopes, asked for once and only when an entry needs one. If they cannot be
 * had, every entry that needed one says so. */
function lazyIndex(envelopes: RekorSourceOptions['envelopes']): () => Promise<EnvelopeIndex> {
  let index: Promise<EnvelopeIndex> | undefined;
  const unavailable = (err: unknown): never => {
    const reason = err instanceof Error ? err.message : String(err);
    throw new GateError(
      'EVIDENCE_CONTENT_MISSING',
      `the entry needs an envelope from another source, and those are unavailable: ${reason}`,
      { cause: err },
    );
  };
  return () =>
    (index ??= Promise.resolve()
      .then(() => envelopes?.() ?? [])
      .then(indexEnvelopes, unavailable));
}

function codeAndMessage(err: unknown, fallback: 'SOURCE_BAD_RESPONSE' | 'EVIDENCE_MALFORMED') {
  const e = toGateError(err, fallback);
  return { code: e.code, message: e.message };
}
