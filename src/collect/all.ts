import { toGateError } from '../errors.js';
import type { Subject } from '../subject.js';
import type { CollectRequest, CollectResult, Source } from './types.js';

/**
 * The collect step: every source asked about every subject, all under the decision's one
 * deadline. Nothing here is trusted; the verify step decides what the evidence is worth.
 */

/** The one deadline of a decision: every source stops looking when `signal` aborts. */
export interface Deadline {
  signal: AbortSignal;
  ms: number;
}

/**
 * After the deadline a source is given this long to answer with its own (coded) failure, as
 * every source of the gate does once its signal aborts; then it is cut off whatever it is doing.
 */
const GRACE_MS = 100;

/** Asks every source about every subject; the same evidence found twice counts once. */
export async function collectAll(
  sources: Source[],
  req: { subjects: Array<Pick<Subject, 'digest' | 'image'>> },
  deadline?: Deadline,
): Promise<CollectResult> {
  const out: CollectResult = { evidence: [], rejected: [], failures: [], searched: [] };
  const seen = new Set<string>();
  for (const subject of req.subjects) {
    const results = await Promise.all(
      sources.map((s) =>
        bounded(
          s,
          { subject: subject.digest, ...(subject.image ? { image: subject.image } : {}) },
          deadline,
        ).catch((err: unknown) => thrownBy(s, err)),
      ),
    );
    for (const r of results) {
      for (const e of r.evidence) if (!seen.has(e.id) && seen.add(e.id)) out.evidence.push(e);
      out.rejected.push(...r.rejected);
      out.failures.push(...r.failures);
      out.searched!.push(...(r.searched ?? []));
    }
  }
  return out;
}

/**
 * One source under the decision's deadline: retries and Retry-After waits included, it never
 * holds the decision past it. A source still looking then is a failure (could not decide).
 */
function bounded(
  source: Source,
  req: Omit<CollectRequest, 'signal'>,
  deadline: Deadline | undefined,
): Promise<CollectResult> {
  if (!deadline) return source.collect(req);
  const { signal, ms } = deadline;
  const cutOff = (): CollectResult => ({
    evidence: [],
    rejected: [],
    failures: [
      {
        source: source.name,
        code: 'SOURCE_TIMEOUT',
        message: `${source.name} was still looking when the decision's deadline of ${ms} ms passed`,
      },
    ],
  });
  if (signal.aborted) return Promise.resolve(cutOff());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CollectResult>((resolve) => {
    signal.addEventListener(
      'abort',
      () => (timer = setTimeout(() => resolve(cutOff()), GRACE_MS)),
      {
        once: true,
      },
    );
  });
  const own = source.collect({ ...req, signal }).then((r) => deadlineNamed(r, signal, ms));
  return Promise.race([own, late]).finally(() => clearTimeout(timer));
}

/**
 * A source that throws instead of answering (a bug, or a source written outside the gate) is a
 * coded failure of that source: the decision is "could not decide" and is recorded, never an
 * uncoded exception out of gate.check (attack corpus, issue 12).
 */
function thrownBy(source: Source, err: unknown): CollectResult {
  const e = toGateError(err, 'SOURCE_BAD_RESPONSE');
  const failure = { source: source.name, code: e.code, message: e.message };
  return { evidence: [], rejected: [], failures: [failure] };
}

/** A request cancelled by the deadline says so, rather than only "cancelled". */
function deadlineNamed(r: CollectResult, signal: AbortSignal, ms: number): CollectResult {
  if (!signal.aborted) return r;
  const failures = r.failures.map((f) => ({
    ...f,
    code: 'SOURCE_TIMEOUT' as const,
    message: `${f.message} (the decision's deadline of ${ms} ms passed)`,
  }));
  return { ...r, failures };
}
