import { GateError, toGateError } from '../errors.js';
import { isPlainObject } from '../util/input.js';
import type { ArtifactDigest } from '../subject.js';
import { HttpClientError, mapLimit, type HttpClient, type RetryPolicy } from './http.js';
import { ENTRY_ID, leafHashOf } from './rekor-entry.js';

/*
 * Reading a Rekor v1 log over the shared HTTP client: the ids indexed under a digest, then the
 * entries in batches. Every request carries the log's own policy (timeout, retries, size cap).
 */

/** Rekor v1 caps entries/retrieve at 10 ids (openapi.yaml SearchLogQuery maxItems). */
const BATCH = 10;
// A log without entries/retrieve answers these; its entries are then read one by one.
const UNSUPPORTED = new Set([404, 405, 501]);

export type Fetched = {
  entries: Map<string, { uuid: string; raw: unknown }>;
  failures: GateError[];
};

/** One log, as the source talks to it: its base URL, client and request policy. */
export interface Log {
  base: string;
  http: HttpClient;
  policy: RetryPolicy;
  concurrency: number;
  name: string;
}

/** The parsed 2xx body; anything else is a SOURCE_* failure from the client. */
async function call(
  log: Log,
  method: 'GET' | 'POST',
  url: string,
  body: unknown,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  return (await log.http.requestJSON(method, url, { ...log.policy, body, signal })).body;
}

/** Entry ids indexed under the digest; one entry may be listed in both id forms. */
export async function search(
  log: Log,
  subject: ArtifactDigest,
  signal?: AbortSignal,
): Promise<string[]> {
  const url = `${log.base}/api/v1/index/retrieve`;
  const hash = `${subject.algorithm}:${subject.hex.toLowerCase()}`;
  const json = await call(log, 'POST', url, { hash }, signal);
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
export async function fetchEntries(
  log: Log,
  ids: string[],
  signal?: AbortSignal,
): Promise<Fetched> {
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

export const FAILED = Symbol('batch failed');

async function fetchBatch(
  log: Log,
  batch: string[],
  state: { retrieve: boolean },
  signal?: AbortSignal,
): Promise<unknown[]> {
  if (state.retrieve) {
    const url = `${log.base}/api/v1/log/entries/retrieve`;
    try {
      const json = await call(log, 'POST', url, { entryUUIDs: batch }, signal);
      if (!Array.isArray(json)) {
        throw new GateError('SOURCE_BAD_RESPONSE', `POST ${url}: expected an array of entries`);
      }
      return json;
    } catch (err) {
      if (!(err instanceof HttpClientError && UNSUPPORTED.has(err.status ?? 0))) throw err;
    }
    state.retrieve = false;
  }
  const one = (id: string) =>
    call(log, 'GET', `${log.base}/api/v1/log/entries/${id}`, undefined, signal);
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
