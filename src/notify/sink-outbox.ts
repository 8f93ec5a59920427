import type { LedgerQuery } from '../audit/ledger.js';
import type { LedgerRecord } from '../audit/record.js';
import type { Decision } from '../decision.js';
import { GateError } from '../errors.js';
import { appendLines, fileSize, readFrom, replaceFile, withFileLock } from './sink-file.js';
import { decisionEvent, type DecisionEvent } from './sink-event.js';
import { sendToSink, type SinkConfig } from './sinks.js';

export interface SinkOutboxOptions {
  file: string;
  sinks: SinkConfig[];
  now?: () => number;
  /** how long enqueued decisions gather before one write and one fsync (default 20 ms) */
  flushMs?: number;
  /** decisions per delivery attempt to one sink (default 500) */
  batch?: number;
  /** first retry delay of a sink that failed; doubles per failure up to maxBackoffMs */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** one request's limit (default 5000 ms) */
  timeoutMs?: number;
  /** compact the file once it is this large and mostly delivered (default 4 MiB) */
  compactBytes?: number;
  /**
   * How far before the newest decision in the outbox the ledger is read again as a gate starts:
   * at least the longest a decision takes from its start (its `time`) to its record.
   */
  recoverSlackMs?: number;
}

type Line =
  | { t: 'd'; e: DecisionEvent }
  | { t: 'ok'; s: string; ids: string[] }
  | { t: 'mark'; time: number; seen: string[] };

interface Pending {
  event: DecisionEvent;
  /** the sinks that have not taken it yet */
  left: Set<string>;
  bytes: number;
}

interface SinkState {
  failures: number;
  nextAt: number;
  lastError?: string;
  delivered: number;
}

/** Only what recovery reads: the ledger's query (SQLite, PostgreSQL). */
export type RecoverySource = { query(q: LedgerQuery): Promise<LedgerRecord[]> };

/**
 * The decision stream's outbox: each recorded decision, for every configured sink, at least once.
 *
 * On the decision path only `enqueue` runs: it keeps the decision's event in memory. Every
 * `flushMs` the events gathered are appended to the file in one write and fsynced in the thread
 * pool; only then are they delivered, in batches, by a background loop that retries each sink on
 * its own with backoff. A sink that is down holds its events in the file and in memory until it
 * takes them; one that hangs costs a timeout per batch, never a decision's time.
 *
 * Why decisions cannot be lost between the ledger and this file: the ledger is written first and
 * is the source of truth. Instead of making every decision pay a second fsync, the file keeps a
 * mark (the newest decision time it holds) and, as a gate starts, `recover` reads the ledger
 * from the mark minus the longest a decision takes to be recorded, enqueuing every record the
 * file does not hold (a crash between the record and the flush). At least once, not exactly
 * once: each event carries its decision id, for receivers to drop repeats.
 *
 * The file does not grow without bound: once it passes `compactBytes` and most of it is
 * delivered, it is rewritten with only the undelivered events (and the ids recovery needs).
 */
export function createSinkOutbox(o: SinkOutboxOptions) {
  const now = o.now ?? Date.now;
  const flushMs = o.flushMs ?? 20;
  const batch = o.batch ?? 500;
  const backoff = o.backoffMs ?? 1000;
  const maxBackoff = o.maxBackoffMs ?? 5 * 60_000;
  const timeoutMs = o.timeoutMs ?? 5000;
  const compactBytes = o.compactBytes ?? 4 * 1024 * 1024;
  const slackMs = o.recoverSlackMs ?? 30_000;
  const names = o.sinks.map((s) => s.name);

  const pending = new Map<string, Pending>();
  const state = new Map<string, SinkState>(
    names.map((n) => [n, { failures: 0, nextAt: 0, delivered: 0 }]),
  );
  /** enqueued, not yet written */
  let gathered: DecisionEvent[] = [];
  /** delivery acknowledgements not yet written (the lock was busy) */
  let acks: string[] = [];
  /** the newest decision time held (epoch ms) */
  let mark = 0;
  /** ids recovery must not enqueue again: those held, and those recent enough to be read */
  let recent = new Map<string, number>();
  let expected = 0;
  let recovered = false;

  function apply(line: Line): void {
    if (line.t === 'mark') {
      mark = Math.max(mark, line.time);
      for (const id of line.seen) recent.set(id, line.time);
    } else if (line.t === 'd') {
      const at = Date.parse(line.e.time);
      mark = Math.max(mark, at);
      recent.set(line.e.id, at);
      if (!pending.has(line.e.id))
        pending.set(line.e.id, { event: line.e, left: new Set(names), bytes: 0 });
    } else if (line.t === 'ok') {
      for (const id of line.ids) settle(id, line.s);
    }
  }

  function settle(id: string, sink: string): void {
    const p = pending.get(id);
    if (!p) return;
    p.left.delete(sink);
    if (p.left.size === 0) pending.delete(id);
  }

  function parse(text: string): Line[] {
    return text.split('\n').flatMap((l) => {
      try {
        return l ? [JSON.parse(l) as Line] : [];
      } catch {
        return []; // a torn last line from a crash: it was never acknowledged as durable
      }
    });
  }

  /** Takes in what another process wrote since this one last did (under the lock). */
  function catchUp(): void {
    const size = fileSize(o.file);
    if (size === expected) return;
    if (size < expected) {
      // another process compacted: what it kept is the whole truth about the file
      pending.clear();
      for (const line of parse(readFrom(o.file, 0))) apply(line);
    } else {
      for (const line of parse(readFrom(o.file, expected))) apply(line);
    }
    expected = size;
  }

  // Loading: a new outbox starts its mark now (decisions before it are not streamed).
  lockedAtStart(o.file, () => {
    catchUp();
    if (expected === 0) {
      mark = now();
      const { size } = appendLines(o.file, [json({ t: 'mark', time: mark, seen: [] })]);
      expected = size;
      recovered = true;
    }
  });
  for (const p of pending.values()) p.bytes = json({ t: 'd', e: p.event }).length;

  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  let delivering: Promise<void> | undefined;
  let closed = false;
  const retry = setInterval(() => void deliver(), Math.max(50, Math.min(backoff, 1000)));
  retry.unref();

  function schedule(): void {
    if (flushTimer || closed) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      void flush().then(() => deliver());
    }, flushMs);
    flushTimer.unref();
  }

  /** Writes what was gathered and the acknowledgements; the events become deliverable once synced. */
  function flush(): Promise<void> {
    const next = flushing.then(async () => {
      if (gathered.length === 0 && acks.length === 0) return;
      const events = gathered;
      const eventLines = events.map((e) => json({ t: 'd', e }));
      const written = withFileLock(o.file, () => {
        catchUp();
        const r = appendLines(o.file, [...eventLines, ...acks]);
        expected = r.size;
        return r.synced;
      });
      if (!written) return schedule(); // another process holds the file for a moment
      gathered = [];
      acks = [];
      await written.value;
      events.forEach((e, i) => {
        mark = Math.max(mark, Date.parse(e.time));
        if (!pending.has(e.id))
          pending.set(e.id, { event: e, left: new Set(names), bytes: eventLines[i]!.length });
      });
    });
    flushing = next.catch(() => undefined);
    return next;
  }

  /** One delivery pass: every sink whose backoff has elapsed gets its undelivered events. */
  function deliver(): Promise<void> {
    if (delivering) return delivering;
    delivering = (async () => {
      try {
        await Promise.all(o.sinks.map((s) => deliverTo(s)));
        if (acks.length) await flush().catch(() => undefined);
        compactIfWorthIt();
      } finally {
        delivering = undefined;
      }
    })();
    return delivering;
  }

  async function deliverTo(sink: SinkConfig): Promise<void> {
    const s = state.get(sink.name)!;
    for (;;) {
      if (now() < s.nextAt) return;
      const events: DecisionEvent[] = [];
      for (const p of pending.values()) {
        if (p.left.has(sink.name)) events.push(p.event);
        if (events.length >= batch) break;
      }
      if (events.length === 0) return;
      const r = await sendToSink(sink, events, timeoutMs);
      if (r.delivered.length) {
        for (const id of r.delivered) settle(id, sink.name);
        acks.push(json({ t: 'ok', s: sink.name, ids: r.delivered }));
        s.delivered += r.delivered.length;
      }
      if (r.error) {
        s.failures++;
        s.lastError = r.error;
        s.nextAt = now() + Math.min(maxBackoff, backoff * 2 ** (s.failures - 1));
        return;
      }
      s.failures = 0;
      s.nextAt = 0;
      delete s.lastError;
      if (events.length < batch || closed) return;
    }
  }

  function compactIfWorthIt(): void {
    if (expected < compactBytes) return;
    let live = 0;
    for (const p of pending.values()) live += p.bytes;
    if (live > expected / 2) return;
    withFileLock(o.file, () => {
      catchUp();
      if (gathered.length || acks.length) return; // written first, compacted next time
      const lines = [json({ t: 'mark', time: mark, seen: seenIds() })];
      for (const p of pending.values()) lines.push(json({ t: 'd', e: p.event }));
      for (const name of names) {
        const ids = [...pending.values()].filter((p) => !p.left.has(name)).map((p) => p.event.id);
        if (ids.length) lines.push(json({ t: 'ok', s: name, ids }));
      }
      expected = replaceFile(o.file, lines);
    });
  }

  /** The ids recovery would read from the ledger again: those within the slack of the mark. */
  function seenIds(): string[] {
    const keep = new Map<string, number>();
    for (const [id, at] of recent) if (at >= mark - slackMs) keep.set(id, at);
    recent = keep;
    return [...keep.keys()];
  }

  return {
    /**
     * The only step on the decision path: the decision's event is gathered for the next write.
     * Call it after the decision's record is durable.
     */
    enqueue(d: Decision): void {
      if (closed) return;
      gathered.push(decisionEvent(d));
      recent.set(d.id, Date.parse(d.time));
      schedule();
    },
    /**
     * Reads the ledger from this outbox's mark (less the slack) and enqueues every record it does
     * not hold: decisions recorded by a gate that stopped before writing them here.
     */
    async recover(ledger: RecoverySource): Promise<number> {
      if (recovered) return 0;
      recovered = true;
      const from = new Date(mark - slackMs).toISOString();
      const found = new Map<string, Decision>();
      let to: string | undefined;
      for (;;) {
        const page = await ledger.query({ from, ...(to ? { to } : {}), limit: 1000 });
        const before = found.size;
        for (const r of page) if (r.decision && !recent.has(r.id)) found.set(r.id, r.decision);
        if (page.length < 1000 || (found.size === before && to !== undefined)) break;
        // newest first: the next page ends at the oldest time seen (inclusive of that millisecond)
        to = new Date(Date.parse(page[page.length - 1]!.time) + 1).toISOString();
      }
      const missing = [...found.values()].sort((a, b) => a.time.localeCompare(b.time));
      for (const d of missing) this.enqueue(d);
      return missing.length;
    },
    flush,
    deliver,
    /** Per sink: events it has not taken, its last error, how many it took from this process. */
    stats(): Record<string, { pending: number; delivered: number; lastError?: string }> {
      const out: Record<string, { pending: number; delivered: number; lastError?: string }> = {};
      for (const name of names) {
        let n = gathered.length;
        for (const p of pending.values()) if (p.left.has(name)) n++;
        const s = state.get(name)!;
        out[name] = {
          pending: n,
          delivered: s.delivered,
          ...(s.lastError ? { lastError: s.lastError } : {}),
        };
      }
      return out;
    },
    /** Writes what was gathered, then one delivery pass for at most `waitMs`. */
    async close(waitMs = 2000): Promise<void> {
      clearInterval(retry);
      clearTimeout(flushTimer);
      flushTimer = undefined;
      // another process may hold the file for a moment: a few tries before giving up to recovery
      for (let i = 0; i < 50 && (gathered.length || acks.length); i++) {
        await flush().catch(() => undefined);
        if (gathered.length || acks.length) await new Promise((r) => setTimeout(r, 10));
      }
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        deliver().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
      ]);
      clearTimeout(timer);
    },
  };
}

export type SinkOutbox = ReturnType<typeof createSinkOutbox>;

/** The lock at start, waited for: another process holds it only for one write. */
function lockedAtStart(file: string, fn: () => void): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 1000; i++) {
    if (withFileLock(file, fn)) return;
    Atomics.wait(pause, 0, 0, 2);
  }
  throw new GateError('NOTIFY_UNAVAILABLE', `the sink outbox ${file} stayed locked`);
}

function json(line: Line): string {
  return `${JSON.stringify(line)}\n`;
}
