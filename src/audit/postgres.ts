import pg from 'pg';
import type { PoolClient } from 'pg';
import type { AuditLedger } from './ledger.js';
import { createCheckpointer, type CheckpointOptions } from './checkpointer.js';
import {
  INSERT_RECORD,
  chainState,
  explainConflict,
  insertCheckpoint,
  insertValues,
  type ChainState,
} from './postgres-append.js';
import {
  SELECT_RECORD,
  querySql,
  toCheckpoint,
  toRecord,
  unavailable,
  type CheckpointRow,
  type RecordRow,
} from './postgres-rows.js';
import { APPEND_LOCK, LOCK_CLASS, migrate, schemaPresent } from './postgres-schema.js';
import { GateError } from '../errors.js';
import {
  BREAK_GLASS_OF,
  OVERRIDE_OF,
  postgresIndexTables,
  refuseReplay,
  storedFromRows,
} from './postgres-index.js';
import { GENESIS, makeRecordWithBody, type Checkpoint, type LedgerRecord } from './record.js';
import type { Decision } from '../decision.js';
import {
  BREAK_GLASS_OUTCOME,
  conflictOf,
  makeBreakGlassRecord,
  requestIdOf,
  type BreakGlassEntry,
  type BreakGlassRecord,
  type LedgerEntry,
} from './break-glass-record.js';
import { verifyRecords } from './verify-ledger.js';

export type { CheckpointOptions } from './checkpointer.js';

export interface PostgresLedgerOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** sign the head with this key and schedule (src/audit/checkpointer.ts) */
  checkpoint?: CheckpointOptions;
  /** connections in this replica's pool (default 10) */
  pool?: number;
  /** the clock for checkpoints */
  now?: () => Date;
  /** called with the checkpoints an append (or the timer) signed, once they are committed */
  publish?: (signed: Checkpoint[]) => void;
  /** only read (gate audit): no migration, no checkpoints, appends refused */
  readOnly?: boolean;
}

/** Records are streamed from the database this many at a time. */
const PAGE = 256;

/**
 * A hash-chained audit ledger in PostgreSQL, shared by any number of gate replicas. Appends take
 * one advisory lock inside their transaction, read the head, insert the next record and commit
 * (synchronous_commit on): the replicas' records form one unbroken chain, and a decision is
 * acknowledged only once its record is committed. Whatever fails, no half record is left, and
 * the error is LEDGER_UNAVAILABLE; a connection that dropped is discarded and the next call
 * connects again.
 */
export async function createPostgresLedger(opts: PostgresLedgerOptions): Promise<AuditLedger> {
  const now = opts.now ?? (() => new Date());
  const checkpointer =
    opts.checkpoint && !opts.readOnly ? createCheckpointer(opts.checkpoint, now) : undefined;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.pool ?? 10,
    application_name: 'gate',
    connectionTimeoutMillis: 10_000,
    // A server that stops answering on an open connection (hung, frozen, a network path lost
    // without a reset) held every decision forever: statement_timeout is the server's own, and
    // nothing on this side gave up (test/faults/ledger.test.ts, issue 12). Wait for an answer as
    // long as for a connection; the query then fails, its connection is discarded, and the
    // decision is LEDGER_UNAVAILABLE. (A commit the server makes after that is recorded but
    // unacknowledged, as after a crash: never the other way round.)
    query_timeout: 10_000,
    keepAlive: true,
    statement_timeout: 30_000,
    lock_timeout: 30_000,
    idle_in_transaction_session_timeout: 60_000,
  });
  // An idle connection that drops is taken out of the pool; the next call connects again.
  pool.on('error', () => undefined);

  async function withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    const onError = () => undefined; // reported to the query under way, or to the next one
    client.on('error', onError);
    let failed = false;
    try {
      return await fn(client);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      client.removeListener('error', onError);
      // after a failure the connection is closed rather than reused: no state can linger
      client.release(failed);
    }
  }

  async function read<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
    try {
      return (await pool.query<R>(text, values)).rows;
    } catch (err) {
      throw unavailable('cannot read the ledger in postgresql', err);
    }
  }

  /** The chain in order (only its decisions when `decisions`), a page at a time. */
  async function* page(decisions: boolean): AsyncGenerator<LedgerEntry> {
    const only = decisions ? `AND r.outcome <> '${BREAK_GLASS_OUTCOME}'` : '';
    let after = 0;
    for (;;) {
      const rows = await read<RecordRow>(
        `${SELECT_RECORD} WHERE r.seq > $1 ${only} ORDER BY r.seq LIMIT $2`,
        [after, PAGE],
      );
      for (const row of rows) yield toRecord(row) as LedgerEntry;
      if (rows.length < PAGE) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  /** Runs fn in a transaction holding the append lock. */
  async function locked<T>(fn: (client: PoolClient, state: ChainState) => Promise<T>): Promise<T> {
    return withClient(async (client) => {
      await client.query(
        `BEGIN; SET LOCAL synchronous_commit TO on; SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${APPEND_LOCK})`,
      );
      try {
        const result = await fn(client, await chainState(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  try {
    await withClient(opts.readOnly ? schemaPresent : migrate);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw unavailable('cannot prepare the ledger schema in postgresql', err);
  }
  // A quiet ledger's unsigned tail is signed after everySeconds; when the server is away, the
  // next tick or append tries again.
  let ticking: Promise<void> | undefined;
  const stopTimer = checkpointer?.schedule(() => {
    ticking ??= locked(async (client, { head, last }) => {
      const checkpoint = checkpointer.due(head, last);
      if (checkpoint) await insertCheckpoint(client, checkpoint);
      return checkpoint;
    })
      .then((signed) => opts.publish?.(signed ? [signed] : []))
      .catch(() => undefined)
      .finally(() => (ticking = undefined));
  });
  let closed = false;

  /**
   * Appends one record under the append lock: a break-glass request's state (stored, revoked)
   * and single use are decided there, by the records, so replicas racing agree.
   */
  async function appendEntry(
    make: (seq: number, prevHash: string) => LedgerEntry,
    decision?: Decision,
  ): Promise<void> {
    if (closed || opts.readOnly)
      throw new GateError('LEDGER_UNAVAILABLE', 'the postgresql ledger is open read-only');
    let signed: Checkpoint | undefined;
    try {
      signed = await locked(async (client, { head, last }) => {
        const record = make(head.size + 1, head.hash);
        const concerns = requestIdOf(record);
        if (concerns !== undefined) {
          const rows = await client.query<{ seq: string; body: string }>(BREAK_GLASS_OF, [
            concerns,
          ]);
          const conflict = conflictOf(record, storedFromRows(concerns, rows.rows));
          if (conflict) throw conflict;
        }
        const single = decision?.override?.reuse !== 'until_expiry';
        if (decision && concerns !== undefined && single) await refuseReplay(client, concerns);
        await client.query(INSERT_RECORD, insertValues(record, decision)).catch((err) => {
          throw explainConflict(err, record);
        });
        const checkpoint = checkpointer?.due({ size: record.seq, hash: record.hash }, last);
        if (checkpoint) await insertCheckpoint(client, checkpoint);
        return checkpoint;
      });
    } catch (err) {
      throw unavailable('cannot record the decision in postgresql', err);
    }
    if (signed) opts.publish?.([signed]);
  }

  const ledger: AuditLedger = {
    append: (decision, input) =>
      appendEntry((seq, prev) => makeRecordWithBody(seq, prev, decision, input).record, decision),

    appendBreakGlass: (entry: BreakGlassEntry) =>
      appendEntry((seq, prev) => makeBreakGlassRecord(seq, prev, entry).record),

    async breakGlassRequest(requestId) {
      return storedFromRows(requestId, await read(BREAK_GLASS_OF, [requestId]));
    },

    async breakGlassRecords(limit = 100) {
      const rows = await read<RecordRow>(
        `${SELECT_RECORD} WHERE r.outcome = '${BREAK_GLASS_OUTCOME}' ORDER BY r.seq DESC LIMIT $1`,
        [limit],
      );
      return rows.map((r) => toRecord(r) as unknown as BreakGlassRecord);
    },

    async consumed(requestId) {
      return (await read(OVERRIDE_OF, [requestId])).length > 0;
    },

    indexTables: () => postgresIndexTables(read),

    async query(q) {
      const { text, values } = querySql(q);
      return (await read<RecordRow>(text, values)).map(toRecord);
    },

    async get(id) {
      const rows = await read<RecordRow>(
        `${SELECT_RECORD} WHERE r.id = $1 AND r.outcome <> '${BREAK_GLASS_OUTCOME}'`,
        [id],
      );
      return rows[0] && toRecord(rows[0]);
    },

    records: () => page(true) as AsyncIterable<LedgerRecord>,

    entries: () => page(false),

    async checkpoints() {
      const rows = await read<CheckpointRow>(
        'SELECT size, head_hash, time, key_id, signature FROM checkpoints ORDER BY size',
      );
      return rows.map(toCheckpoint);
    },

    async head() {
      const rows = await read<{ seq: string; hash: string }>(
        'SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1',
      );
      return rows[0]
        ? { size: Number(rows[0].seq), hash: rows[0].hash }
        : { size: 0, hash: GENESIS };
    },

    // No stored bytes to check faster: the records as read, with every index cross-checked.
    verify: (publicKey, verifyOpts) => verifyRecords(ledger, publicKey, verifyOpts),

    async close() {
      if (closed) return;
      closed = true;
      stopTimer?.();
      await ticking;
      await pool.end();
    },
  };
  return ledger;
}
