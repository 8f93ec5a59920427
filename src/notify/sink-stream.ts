import type { Decision } from '../decision.js';
import { randomUUID } from 'node:crypto';
import { GateError } from '../errors.js';
import { appendLines, fileSize, forEachLine, replaceFile, withFileLock } from './sink-file.js';
import { ledgerPages, type QueryableLedger } from './ledger-pages.js';
import { decisionEvent, type DecisionEvent } from './sink-event.js';
import { sendToSink, type SinkConfig } from './sinks.js';

export interface SinkStreamOptions {
  file: string;
  sink: SinkConfig;
  now?: () => number;
  /**
   * how long enqueued decisions gather before one write and one fsync (default 100 ms): the fsync
   * runs in the thread pool the ledger fsyncs in too, ten a second at most
   */
  flushMs?: number;
  /** decisions per delivery attempt (default 500) */
  batch?: number;
  /** first retry delay after a failure; doubles per failure up to maxBackoffMs */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** one request's limit (default 5000 ms) */
  timeoutMs?: number;
  /** compact the file once it is this large and mostly delivered (default 4 MiB) */
  compactBytes?: number;
  /**
   * Events held in memory at most (default 100,000): past them, while a sink is down, the rest
   * wait in the file alone and are read back as the sink takes what is held.
   */
  memoryLimit?: number;
  /**
   * How far before the newest decision in the outbox the ledger is read again as a gate starts:
   * at least the longest a decision takes from its start (its `time`) to its record.
   */
  recoverSlackMs?: number;
}

type Line =
  | { t: 'd'; e: DecisionEvent }
  | { t: 'ok'; ids: string[] }
  | { t: 'mark'; time: number; seen: string[] }
  /** a gate started on this file (`id` is that start's); `closed` once it stopped cleanly */
  | { t: 'open'; id: string; pid: number; at: number }
  | { t: 'closed'; id: string; at: number };

interface Pending {
  event: DecisionEvent;
  /** its line's length in the file */
  bytes: number;
}

/** Only what recovery reads: the ledger's query (SQLite, PostgreSQL). */
export type RecoverySource = QueryableLedger;

/**
 * One sink's persisted stream: each recorded decision, at least once.
 *
 * On the decision path only `enqueue` runs: it keeps the decision's event in memory. Every
 * `flushMs` the events gathered are appended to the file in one write and fsynced in the thread
 * pool; only then are they delivered, in batches, by a background loop that retries with
 * backoff. A sink that is down leaves its events in the file (and, up to `memoryLimit`, in
 * memory) until it takes them; one that hangs costs a timeout per batch, never a decision's time.
 *
 * Why decisions cannot be lost between the ledger and this file: the ledger is written first and
 * is the source of truth. Instead of making every decision pay a second fsync, each gate notes
 * in the file that it started and, once it has written everything, that it closed; the file keeps
 * a mark (the newest decision time it holds). As a gate starts after one that never closed (its
 * process gone), `recover` reads the ledger from the mark minus the longest a decision takes to
 * be recorded and enqueues every record the file does not hold (a crash between the record and
 * the flush). At least once, not exactly once: each event carries its decision id, for receivers
 * to drop repeats.
 *
 * The file does not grow without bound: once it passes `compactBytes` and most of it is
 * delivered, it is rewritten with only the undelivered events (and the ids recovery needs).
 */
export function createSinkStream(o: SinkStreamOptions) {
  const now = o.now ?? Date.now;
  const flushMs = o.flushMs ?? 100;
  const batch = o.batch ?? 500;
  const backoff = o.backoffMs ?? 1000;
  const maxBackoff = o.maxBackoffMs ?? 5 * 60_000;
  const timeoutMs = o.timeoutMs ?? 5000;
  const compactBytes = o.compactBytes ?? 4 * 1024 * 1024;
  const slackMs = o.recoverSlackMs ?? 30_000;
  const memoryLimit = Math.max(1, o.memoryLimit ?? 100_000);
  const sink = o.sink;

  /** written, fsynced and not yet taken by the sink, oldest first */
  const pending = new Map<string, Pending>();
  const state: { failures: number; nextAt: number; lastError?: string; delivered: number } = {
    failures: 0,
    nextAt: 0,
    delivered: 0,
  };
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
  /** starts of gates on this file that have not closed: id -> pid */
  const opens = new Map<string, number>();
  const self = randomUUID();
  /** where the first event not held in memory starts in the file; undefined: every one is held */
  let spill: number | undefined;
  /** events from `spill` on that are not held */
  let spilled = 0;
  /** ids not held that an acknowledgement in the file says the sink took */
  const done = new Set<string>();
  /** the last failure to read or rewrite the file in the background */
  let fileError: string | undefined;

  /** Holds an event, or leaves it to the file once memory is full (and every later one too). */
  function hold(e: DecisionEvent, at: number, bytes: number): void {
    if (pending.has(e.id)) return;
    if (spill === undefined && pending.size < memoryLimit) {
      pending.set(e.id, { event: e, bytes });
      return;
    }
    spill ??= at;
    spilled++;
  }

  function apply(line: Line, at: number, bytes: number): void {
    if (line.t === 'open') opens.set(line.id, line.pid);
    else if (line.t === 'closed') opens.delete(line.id);
    else if (line.t === 'mark') {
      mark = Math.max(mark, line.time);
      for (const id of line.seen) recent.set(id, line.time);
    } else if (line.t === 'd') {
      const time = Date.parse(line.e.time);
      mark = Math.max(mark, time);
      recent.set(line.e.id, time);
      hold(line.e, at, bytes);
    } else if (line.t === 'ok') {
      for (const id of line.ids) settle(id);
    }
  }

  function settle(id: string): void {
    // one left to the file is remembered, so reading it back does not send it again
    if (!pending.delete(id) && spill !== undefined) done.add(id);
  }

  function parse(text: string): Line | undefined {
    try {
      return text ? (JSON.parse(text) as Line) : undefined;
    } catch {
      return undefined; // a torn line from a crash: it was never acknowledged as durable
    }
  }

  /** Takes in what another process wrote since this one last did (under the lock). */
  function catchUp(): void {
    const size = fileSize(o.file);
    if (size === expected) return;
    let from = expected;
    if (size < expected) {
      // another process compacted: what it kept is the whole truth about the file
      pending.clear();
      spill = undefined;
      spilled = 0;
      done.clear();
      from = 0;
    }
    forEachLine(o.file, from, (text, at) => {
      const line = parse(text);
      if (line) apply(line, at, Buffer.byteLength(text) + 1);
    });
    expected = size;
  }

  // Loading: a new outbox starts its mark now (decisions before it are not streamed). The ledger
  // is read again only when a gate that started on this file stopped without closing it (a
  // crash: what it had gathered may not have been written); a clean stop flushes first.
  let crashed: string[] = [];
  lockedAtStart(o.file, () => {
    catchUp();
    const lines: string[] = [];
    if (expected === 0) {
      mark = now();
      lines.push(json({ t: 'mark', time: mark, seen: [] }));
    }
    crashed = [...opens].filter(([, pid]) => !alive(pid)).map(([id]) => id);
    recovered = crashed.length === 0;
    lines.push(json({ t: 'open', id: self, pid: process.pid, at: now() }));
    opens.set(self, process.pid);
    expected = appendLines(o.file, lines).size;
  });
  // only the ids within the slack of the mark are needed, to write them at the next compaction
  pruneRecent();

  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  let delivering: Promise<void> | undefined;
  let closed = false;
  // background work never throws out of here: a file that cannot be written is retried later
  const retry = setInterval(
    () => void deliver().catch(() => undefined),
    Math.max(50, Math.min(backoff, 1000)),
  );
  retry.unref();

  function schedule(): void {
    if (flushTimer || closed) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      void flush()
        .then(() => deliver())
        .catch(() => undefined);
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
        return r;
      });
      if (!written) return schedule(); // another process holds the file for a moment
      gathered = [];
      acks = [];
      await written.value.synced;
      let at = written.value.start;
      events.forEach((e, i) => {
        mark = Math.max(mark, Date.parse(e.time));
        const bytes = Buffer.byteLength(eventLines[i]!);
        hold(e, at, bytes);
        at += bytes;
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
        refill();
        await deliverPass();
        if (acks.length) await flush().catch(() => undefined);
        compactIfWorthIt();
      } catch (err) {
        fileError = (err as Error).message;
      } finally {
        delivering = undefined;
      }
    })();
    return delivering;
  }

  /** Batches of what is held, oldest first, until none is left or the sink fails. */
  async function deliverPass(): Promise<void> {
    const s = state;
    for (;;) {
      if (now() < s.nextAt) return;
      const events: DecisionEvent[] = [];
      for (const p of pending.values()) {
        events.push(p.event);
        if (events.length >= batch) break;
      }
      if (events.length === 0) return;
      const r = await sendToSink(sink, events, timeoutMs);
      if (r.delivered.length) {
        for (const id of r.delivered) settle(id);
        acks.push(json({ t: 'ok', ids: r.delivered }));
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
      refill();
    }
  }

  /** Reads back events left to the file, once what is held has gone down to half the limit. */
  function refill(): void {
    if (spill === undefined || pending.size > memoryLimit / 2) return;
    withFileLock(o.file, () => {
      catchUp();
      if (spill === undefined) return;
      const from = spill;
      spill = undefined;
      const stopped = forEachLine(o.file, from, (text) => {
        const line = parse(text);
        if (line?.t === 'd' && !pending.has(line.e.id)) {
          if (pending.size >= memoryLimit) return false;
          if (!done.delete(line.e.id)) {
            pending.set(line.e.id, { event: line.e, bytes: Buffer.byteLength(text) + 1 });
          }
          spilled--;
        } else if (line?.t === 'ok') {
          for (const id of line.ids) settle(id);
        }
        return true;
      });
      if (stopped < expected) spill = stopped;
      else {
        spilled = 0;
        done.clear();
      }
    });
  }

  function pruneRecent(): void {
    // insertion order is nearly time order: the old ones are at the front
    for (const [id, at] of recent) {
      if (at >= mark - slackMs) break;
      recent.delete(id);
    }
  }

  function compactIfWorthIt(): void {
    pruneRecent();
    if (expected < compactBytes || spill !== undefined) return;
    let live = 0;
    for (const p of pending.values()) live += p.bytes;
    if (live > expected / 2) return;
    withFileLock(o.file, () => {
      catchUp();
      if (gathered.length || acks.length) return; // written first, compacted next time
      const lines = [json({ t: 'mark', time: mark, seen: seenIds() })];
      for (const [id, pid] of opens) lines.push(json({ t: 'open', id, pid, at: now() }));
      for (const p of pending.values()) lines.push(json({ t: 'd', e: p.event }));
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
      const start = new Date(mark - slackMs).toISOString();
      const found = new Map<string, Decision>();
      for await (const r of ledgerPages(ledger, { from: start }))
        if (r.decision && !recent.has(r.id)) found.set(r.id, r.decision);
      const missing = [...found.values()].sort((a, b) => a.time.localeCompare(b.time));
      for (const d of missing) this.enqueue(d);
      // recovered for the gates that crashed: later starts need not read the ledger for them
      await flush();
      for (const id of crashed) opens.delete(id);
      acks.push(...crashed.map((id) => json({ t: 'closed', id, at: now() })));
      await flush();
      return missing.length;
    },
    flush,
    deliver,
    /** Events the sink has not taken, its last error, how many it took from this process. */
    stats(): SinkStats {
      return {
        pending: gathered.length + pending.size + Math.max(0, spilled - done.size),
        delivered: state.delivered,
        ...(state.lastError ? { lastError: state.lastError } : {}),
      };
    },
    /** Why the file could not be read or rewritten in the background last, if it could not. */
    fileError: () => fileError,
    /** Events held in memory (at most `memoryLimit`; the rest wait in the file). */
    held: () => pending.size,
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
      // stopped cleanly: everything gathered is in the file (or the next start reads the ledger)
      if (gathered.length === 0) {
        acks.push(json({ t: 'closed', id: self, at: now() }));
        await flush().catch(() => undefined);
      }
    },
  };
}

export type SinkStream = ReturnType<typeof createSinkStream>;

export interface SinkStats {
  pending: number;
  delivered: number;
  lastError?: string;
}

/** A process that still runs (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  if (pid === process.pid) return false; // a gate before this one that had this pid (a container's)
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
