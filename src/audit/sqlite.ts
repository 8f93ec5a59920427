import { close as closeFd, fsync, open as openFd } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { GateError } from '../errors.js';
import {
  BREAK_GLASS_OUTCOME,
  type BreakGlassEntry,
  type LedgerEntry,
} from './break-glass-record.js';
import { createCheckpointer, type CheckpointOptions } from './checkpointer.js';
import type { AuditLedger } from './ledger.js';
import type { IndexTables } from './index-audit.js';
import type { Checkpoint, LedgerRecord } from './record.js';
import {
  breakGlassRecordsOf,
  overrideOf,
  sqliteIndexTables,
  storedBreakGlass,
} from './sqlite-index.js';
import {
  querySql,
  RECORD_COLUMNS,
  toCheckpoint,
  toRecord,
  type CheckpointRow,
  type RecordRow,
} from './sqlite-rows.js';
import { isBusy, ledgerError, openLedgerDb, openReadOnly, sql, type Db } from './sqlite-schema.js';
import { verifyStoredChain } from './sqlite-verify.js';
import { appendBatch, checkpointNow, headOf, type Appendable } from './sqlite-append.js';

export const DEFAULT_SQLITE_LEDGER_PATH = path.join('.gate', 'ledger.db');

export interface SqliteLedgerOptions {
  /** the database file (default .gate/ledger.db); its directory is created when missing */
  path?: string;
  /** sign the head with this Ed25519 key every N records or S seconds */
  checkpoint?: CheckpointOptions;
  /** the clock for checkpoints */
  now?: () => Date;
  /** how long to wait for another process's write lock before LEDGER_UNAVAILABLE (default 5000) */
  busyTimeoutMs?: number;
  /** called with the checkpoints an append (or the timer) signed, once they are committed */
  publish?: (signed: Checkpoint[]) => void;
  /** only read (gate audit): never create, migrate or write the file; works on read-only media */
  readOnly?: boolean;
  /** how the write-ahead log is made durable (default: fsync(2) in libuv's thread pool) */
  fsync?: (fd: number) => Promise<void>;
}

const fsyncAsync = promisify(fsync);
const openAsync = promisify(openFd);

type Pending = Appendable & {
  resolve: () => void;
  reject: (err: unknown) => void;
  /** when append was called: the busy timeout counts from here */
  since: number;
  /** not written after this (epoch ms): the busy timeout or the caller's limit, the sooner */
  giveUpAt: number;
};

/** Rows read per step when streaming the chain. */
const PAGE = 2000;

/**
 * The hash-chained SQLite ledger. Appends issued together (concurrent decisions) are committed in
 * one IMMEDIATE transaction with one fsync (group commit), each record chained to the head read
 * inside that transaction, so several processes sharing the file form one chain. A decision is
 * acknowledged (its append resolves) only after the commit is on disk: the write-ahead log is
 * fsynced in the thread pool after the commit, so the event loop goes on deciding while the disk
 * works (better-sqlite3 is synchronous, and synchronous = FULL would wait on the loop). The
 * connection is opened on first use and reopened after a failure: a ledger that cannot be used
 * answers LEDGER_UNAVAILABLE, and recovers when the file does.
 */
export function createSqliteLedger(opts: SqliteLedgerOptions = {}): AuditLedger {
  const file = opts.path ?? DEFAULT_SQLITE_LEDGER_PATH;
  const now = opts.now ?? (() => new Date());
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  const checkpointer =
    opts.checkpoint && !opts.readOnly ? createCheckpointer(opts.checkpoint, now) : undefined;
  let conn: Db | undefined;
  let closed = false;
  let queue: Pending[] = [];
  let flushing: Promise<void> | undefined;
  const syncing = new Set<Promise<void>>();
  const syncFd = opts.fsync ?? fsyncAsync;
  /** a descriptor of the write-ahead log, for fsync; closed once no fsync uses it */
  let wal: { fd: Promise<number>; users: number; stale: boolean } | undefined;

  /**
   * Makes every commit so far durable: fsync of the write-ahead log (WAL mode is required, see
   * sqlite-schema.ts; any descriptor of the file flushes it). The log is the same file for the
   * connection's life; a fresh descriptor is opened after a fault.
   */
  async function syncWal(): Promise<void> {
    const w = (wal ??= { fd: openAsync(`${file}-wal`, 'r+'), users: 0, stale: false });
    w.users++;
    try {
      // The log lives as long as the connection (SQLite removes it only when the last one
      // closes, and a fault here closes ours and drops this descriptor): no check per commit.
      await syncFd(await w.fd);
    } catch (err) {
      w.stale = true;
      if (wal === w) wal = undefined;
      throw err;
    } finally {
      w.users--;
      if (w.stale && w.users === 0)
        void w.fd.then(
          (fd) => closeFd(fd, () => {}),
          () => {},
        );
    }
  }

  /** Settles `batch` once its commit is durable; a failed fsync fails it (and the connection). */
  function afterSync(work: () => void, fail: (err: GateError) => void, what: string): void {
    const p = syncWal().then(work, (err: unknown) => fail(fault(err, what)));
    syncing.add(p);
    void p.finally(() => syncing.delete(p));
  }

  function db(): Db {
    if (closed) throw new GateError('LEDGER_UNAVAILABLE', `the ledger ${file} is closed`);
    conn ??= opts.readOnly ? openReadOnly(file, busyTimeoutMs) : openLedgerDb(file, busyTimeoutMs);
    return conn;
  }

  /** After a fault that may concern the connection itself, the next call opens a fresh one. */
  function fault(err: unknown, what: string): GateError {
    if (!(err instanceof GateError) && !isBusy(err) && conn) {
      try {
        conn.close();
      } catch {
        // already unusable
      }
      conn = undefined;
      // the reopened connection's log gets a descriptor of its own
      if (wal) {
        const w = wal;
        wal = undefined;
        w.stale = true;
        if (w.users === 0)
          void w.fd.then(
            (fd) => closeFd(fd, () => {}),
            () => {},
          );
      }
    }
    return ledgerError(err, what);
  }

  /**
   * Commits every queued append in one transaction (sqlite-append.ts). While another process
   * holds the write lock the batch waits, polling every millisecond without blocking the event
   * loop (appends arriving meanwhile join it), until busyTimeoutMs after its oldest append.
   */
  function flush(): void {
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const what = (p: Pending) =>
      p.breakGlass
        ? `cannot record break-glass record ${p.breakGlass.id} in ${file}`
        : `cannot record decision ${p.decision.id} in ${file}`;
    const whatAll = () =>
      batch.length === 1 ? what(batch[0]!) : `cannot record ${batch.length} decisions in ${file}`;
    let failed: Map<number, unknown> | undefined;
    const signed: Checkpoint[] = [];
    try {
      failed = appendBatch(db(), batch, checkpointer, signed);
    } catch (err) {
      const e = fault(err, whatAll());
      for (const p of batch) p.reject(e);
      return;
    }
    if (failed === undefined) {
      // another process holds the write lock: those whose time is up are refused, unwritten
      const now = Date.now();
      const waiting = batch.filter((p) => now < p.giveUpAt);
      for (const p of batch.filter((q) => now >= q.giveUpAt)) {
        const held = now - p.since;
        const why =
          p.giveUpAt < p.since + busyTimeoutMs
            ? `another process held the write lock for ${held} ms, past the decision's deadline`
            : `another process held the write lock for ${busyTimeoutMs} ms`;
        p.reject(
          new GateError('LEDGER_UNAVAILABLE', `${what(p)}: the database is locked (${why})`),
        );
      }
      if (waiting.length) {
        queue = [...waiting, ...queue];
        schedule(1);
      }
      return;
    }
    const done = failed;
    afterSync(
      () => {
        if (signed.length) opts.publish?.(signed);
        batch.forEach((p, i) => {
          const err = done.get(i);
          if (err) p.reject(ledgerError(err, what(p)));
          else p.resolve();
        });
      },
      (e) => batch.forEach((p) => p.reject(e)),
      whatAll(),
    );
  }

  function schedule(delayMs = 0): void {
    flushing ??= new Promise<void>((done) => {
      const go = () => {
        flushing = undefined;
        flush();
        done();
      };
      if (delayMs > 0) setTimeout(go, delayMs);
      else setImmediate(go);
    });
  }

  /** A quiet ledger's unsigned tail gets a checkpoint after everySeconds (best effort: the next append retries). */
  const stopTimer = checkpointer?.schedule(() => {
    // only a ledger this process has opened (a timer never creates the file)
    if (closed || !conn || queue.length > 0) return;
    try {
      const signed = checkpointNow(conn, checkpointer);
      afterSync(
        () => opts.publish?.(signed ? [signed] : []),
        () => {},
        'checkpoint',
      );
    } catch (err) {
      fault(err, 'checkpoint');
    }
  });

  function read<T>(what: string, fn: (d: Db) => T): T {
    try {
      return fn(db());
    } catch (err) {
      throw fault(err, `cannot read the ledger ${file} (${what})`);
    }
  }

  /** The chain in order (only its decisions when `decisions`), a page at a time. */
  async function* page(decisions: boolean): AsyncGenerator<LedgerEntry> {
    // Pages by seq on the shared connection: no statement stays open across awaits, and an
    // append-only table read in seq order is consistent page to page.
    const only = decisions ? `AND r.outcome <> '${BREAK_GLASS_OUTCOME}'` : '';
    let after = 0;
    for (;;) {
      const rows = read('records', (d) =>
        sql(
          d,
          `SELECT ${RECORD_COLUMNS} FROM records r WHERE r.seq > ? ${only} ORDER BY r.seq LIMIT ?`,
        ).all(after, PAGE),
      ) as RecordRow[];
      for (const row of rows) yield toRecord(row) as LedgerEntry;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  function checkpoints(): Checkpoint[] {
    return read('checkpoints', (d) =>
      (
        sql(
          d,
          'SELECT size, head_hash, time, key_id, signature FROM checkpoints ORDER BY size',
        ).all() as CheckpointRow[]
      ).map(toCheckpoint),
    );
  }

  function enqueue(item: Appendable, until: number | undefined): Promise<void> {
    if (closed || opts.readOnly)
      return Promise.reject(
        new GateError(
          'LEDGER_UNAVAILABLE',
          `the ledger ${file} is ${closed ? 'closed' : 'open read-only'}`,
        ),
      );
    return new Promise<void>((resolve, reject) => {
      const since = Date.now();
      const giveUpAt = Math.min(since + busyTimeoutMs, until ?? Infinity);
      queue.push({ ...item, resolve, reject, since, giveUpAt } as Pending);
      schedule();
    });
  }

  return {
    append: (decision, input, appendOpts = {}) => enqueue({ decision, input }, appendOpts.until),

    appendBreakGlass: (entry: BreakGlassEntry, appendOpts = {}) =>
      enqueue({ breakGlass: entry }, appendOpts.until),

    async breakGlassRequest(requestId) {
      return read('break-glass request', (d) => storedBreakGlass(d, requestId));
    },

    async breakGlassRecords(limit = 100) {
      return read('break-glass records', (d) => breakGlassRecordsOf(d, limit));
    },

    async consumed(requestId) {
      return read('consumed', (d) => overrideOf(d, requestId) !== undefined);
    },

    async query(q) {
      const { text, params } = querySql(q);
      return read('query', (d) => (sql(d, text).all(...params) as RecordRow[]).map(toRecord));
    },

    async get(id) {
      const row = read('get', (d) =>
        sql(
          d,
          `SELECT ${RECORD_COLUMNS} FROM records r WHERE r.id = ? AND r.outcome <> '${BREAK_GLASS_OUTCOME}'`,
        ).get(id),
      ) as RecordRow | undefined;
      return row ? toRecord(row) : undefined;
    },

    records: () => page(true) as AsyncIterable<LedgerRecord>,

    entries: () => page(false),

    checkpoints: async () => checkpoints(),

    indexTables: (): IndexTables => read('indexes', sqliteIndexTables),

    // From the stored bytes, without re-canonicalising each record (sqlite-verify.ts): the
    // answer of verifyRecords (verify-ledger.ts), several times faster.
    async verify(publicKey, verifyOpts) {
      try {
        return await verifyStoredChain(file, busyTimeoutMs, publicKey, verifyOpts);
      } catch (err) {
        throw ledgerError(err, `cannot read the ledger ${file} (verify)`);
      }
    },

    async head() {
      return read('head', headOf);
    },

    async close() {
      if (closed) return;
      while (flushing || syncing.size) {
        await flushing;
        await Promise.allSettled([...syncing]);
      }
      closed = true;
      stopTimer?.();
      if (wal) {
        const w = wal;
        wal = undefined;
        await w.fd.then((fd) => promisify(closeFd)(fd)).catch(() => {});
      }
      try {
        conn?.close();
      } finally {
        conn = undefined;
      }
    },
  };
}
