import { createHash } from 'node:crypto';
import { GateError, toGateError } from '../errors.js';
import { isPlainObject } from '../input.js';
import type { ArtifactDigest } from '../verify/types.js';
import {
  dsseEntryBundle,
  indexEnvelopes,
  intotoBundle,
  type EnvelopeIndex,
} from './rekor-content.js';
import { decodeBody, ENTRY_ID, leafHashOf, malformed, parseEntry } from './rekor-entry.js';
import { expectJSON, HttpClient, mapLimit, type FetchLike } from './rekor-http.js';
import {
  emptyResult,
  type CollectRequest,
  type CollectResult,
  type Evidence,
  type Source,
} from './types.js';

export type { FetchLike } from './rekor-http.js';

export interface RekorSourceOptions {
  /** the log's base URL, e.g. https://rekor.sigstore.dev */
  url: string;
  /** replaces the pooled undici fetch */
  fetch?: FetchLike;
  /** more entry ids than this for one subject is a SOURCE_LIMIT_EXCEEDED failure (default 100) */
  maxEntries?: number;
  /** entry requests in flight at once (default 4) */
  concurrency?: number;
  /** per HTTP attempt (default 10 s) */
  timeoutMs?: number;
  /** envelopes other sources found: dsse entries (and intoto ones without data) are joined to them */
  envelopes?: () => Evidence[] | Promise<Evidence[]>;
  /** retries on 5xx/429 (default 2) and the first backoff delay (default 250 ms) */
  retries?: number;
  retryDelayMs?: number;
  /** largest response body (default 8 MiB) */
  maxResponseBytes?: number;
}

export type RekorSource = Source & { close(): Promise<void> };

/** Rekor v1 caps entries/retrieve at 10 ids (openapi.yaml SearchLogQuery maxItems). */
const BATCH = 10;
// A log without entries/retrieve answers these; its entries are then read one by one.
const UNSUPPORTED = new Set([404, 405, 501]);

type Fetched = { entries: Map<string, { uuid: string; raw: unknown }>; failures: GateError[] };

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
  const http = new HttpClient({
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    timeoutMs: opts.timeoutMs,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    maxBytes: opts.maxResponseBytes,
    connections: concurrency,
  });
  const log = { base, http, concurrency, name };
  return {
    name,
    close: () => http.close(),
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

interface Log {
  base: string;
  http: HttpClient;
  concurrency: number;
  name: string;
}

/** Entry ids indexed under the digest; one entry may be listed in both id forms. */
async function search(log: Log, subject: ArtifactDigest, signal?: AbortSignal): Promise<string[]> {
  const url = `${log.base}/api/v1/index/retrieve`;
  const hash = `${subject.algorithm}:${subject.hex.toLowerCase()}`;
  const json = expectJSON(await log.http.request('POST', url, { hash }, signal), `POST ${url}`);
  if (!Array.isArray(json) || !json.every((id) => typeof id === 'string' && ENTRY_ID.test(id))) {
    throw new GateError('SOURCE_BAD_RESPONSE', `POST ${url}: expected an array of entry ids`);
  }
  const byLeaf = new Map<string, string>();
  for (const id of json as string[])
    if (!byLeaf.has(leafHashOf(id))) byLeaf.set(leafHashOf(id), id);
  return [...byLeaf.values()];
}

/** Batches of at most 10 ids, `concurrency` batches in flight; GET one by one where the log has
 * no entries/retrieve. A failed batch is one failure; the other batches still count. */
async function fetchEntries(log: Log, ids: string[], signal?: AbortSignal): Promise<Fetched> {
  const out: Fetched = { entries: new Map(), failures: [] };
  const batches = Array.from({ length: Math.ceil(ids.length / BATCH) }, (_, i) =>
    ids.slice(i * BATCH, (i + 1) * BATCH),
  );
  const state = { retrieve: true };
  await mapLimit(batches, log.concurrency, async (batch) => {
    try {
      for (const value of await fetchBatch(log, batch, state, signal)) addEntries(out, value);
    } catch (err) {
      const e = toGateError(err, 'SOURCE_BAD_RESPONSE');
      const lost = `${batch.length} entr${batch.length === 1 ? 'y' : 'ies'} not fetched`;
      out.failures.push(new GateError(e.code, `${lost}: ${e.message}`, { cause: err }));
      for (const id of batch) {
        if (!out.entries.has(leafHashOf(id)))
          out.entries.set(leafHashOf(id), { uuid: id, raw: FAILED });
      }
    }
  });
  for (const id of ids) {
    if (!out.entries.has(leafHashOf(id))) {
      out.failures.push(
        new GateError(
          'SOURCE_BAD_RESPONSE',
          `${log.name} indexes entry ${id} but did not return it`,
        ),
      );
    }
  }
  return out;
}

const FAILED = Symbol('batch failed');

async function fetchBatch(
  log: Log,
  batch: string[],
  state: { retrieve: boolean },
  signal?: AbortSignal,
): Promise<unknown[]> {
  if (state.retrieve) {
    const url = `${log.base}/api/v1/log/entries/retrieve`;
    const reply = await log.http.request('POST', url, { entryUUIDs: batch }, signal);
    if (!UNSUPPORTED.has(reply.status)) {
      const json = expectJSON(reply, `POST ${url}`);
      if (!Array.isArray(json)) {
        throw new GateError('SOURCE_BAD_RESPONSE', `POST ${url}: expected an array of entries`);
      }
      return json;
    }
    state.retrieve = false;
  }
  const one = async (id: string) => {
    const url = `${log.base}/api/v1/log/entries/${id}`;
    return expectJSON(await log.http.request('GET', url, undefined, signal), `GET ${url}`);
  };
  // Sequential within the batch: the batches already run `concurrency` at a time.
  return mapLimit(batch, 1, one);
}

/** Each element is `{ <entry id>: entry }`; ids the log added on its own are kept too. */
function addEntries(out: Fetched, value: unknown): void {
  if (!isPlainObject(value)) {
    throw new GateError('SOURCE_BAD_RESPONSE', 'log entry response is not a json object');
  }
  for (const [uuid, raw] of Object.entries(value)) {
    if (ENTRY_ID.test(uuid)) out.entries.set(leafHashOf(uuid), { uuid, raw });
  }
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
