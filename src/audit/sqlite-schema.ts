import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GateError } from '../errors.js';

// A copy of the ledger on read-only media can only be opened as `file:...?immutable=1` (see
// openReadOnly), and better-sqlite3 reads `file:` names as URIs only when this is set before its
// first connection. Paths the gate opens are absolute, so no other name changes meaning.
process.env.SQLITE_USE_URI ??= '1';

export type Db = Database.Database;
export type Statement = Database.Statement;

/** PRAGMA application_id of a gate ledger ("gate" in ASCII), so another SQLite file is refused. */
export const APPLICATION_ID = 0x67617465;
/** PRAGMA user_version: the schema below. */
export const SCHEMA_VERSION = 1;

const TABLES = ['records', 'subjects', 'rules', 'consumed', 'checkpoints'];

/**
 * One row per record: the indexed fields in columns, `body` the RFC 8785 canonical JSON of the
 * record without its hash, i.e. exactly the bytes `hash` is the SHA-256 of. subjects, rules and
 * consumed are lookup indexes derived from the record at append; checkpoints are signed heads.
 * Every table is append-only: triggers abort an UPDATE or DELETE (against accidents; a
 * determined attacker edits the file anyway, which verification and checkpoints catch).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  time TEXT NOT NULL,
  environment TEXT NOT NULL,
  outcome TEXT NOT NULL,
  requester TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE INDEX IF NOT EXISTS records_environment ON records (environment);
CREATE INDEX IF NOT EXISTS records_outcome ON records (outcome);
CREATE INDEX IF NOT EXISTS records_requester ON records (requester) WHERE requester IS NOT NULL;
CREATE TABLE IF NOT EXISTS subjects (
  subject TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rules (
  rule TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (rule, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumed (
  request_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  size INTEGER PRIMARY KEY,
  head_hash TEXT NOT NULL,
  time TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);
${TABLES.map(
  (t) => `
CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t}
  BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: ${t} cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t}
  BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: ${t} cannot be deleted from'); END;`,
).join('')}
`;

/**
 * Opens (creating when missing, with its directory) a ledger database: WAL journal, FULL sync (a
 * commit returns once it is on disk), a busy timeout so processes sharing the file wait for each
 * other. Throws LEDGER_UNAVAILABLE when the file cannot be used.
 */
export function openLedgerDb(file: string, busyTimeoutMs: number): Db {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      return tryOpen(file, busyTimeoutMs);
    } catch (err) {
      // Switching to WAL or creating the schema can find another process doing the same: retry.
      if (isBusy(err) && Date.now() < deadline) {
        sleep(25);
        continue;
      }
      throw ledgerError(err, `cannot open the ledger ${file}`);
    }
  }
}

function tryOpen(file: string, busyTimeoutMs: number): Db {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file, { timeout: busyTimeoutMs });
  try {
    // Read together, in one read transaction: a second process creating the ledger commits its
    // tables and its application id at once, and reading them apart could see the tables
    // without the id (found by two processes creating one ledger at once).
    const { appId, version, tables } = db.transaction(() => ({
      appId: db.pragma('application_id', { simple: true }) as number,
      version: db.pragma('user_version', { simple: true }) as number,
      tables: hasTables(db),
    }))();
    if (appId !== APPLICATION_ID && (appId !== 0 || tables))
      throw new GateError('LEDGER_UNAVAILABLE', `${file} is a database, but not a gate ledger`);
    if (version > SCHEMA_VERSION)
      throw new GateError(
        'LEDGER_UNAVAILABLE',
        `${file} was written by a newer gate (schema ${version})`,
      );
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode !== 'wal')
      throw new GateError(
        'LEDGER_UNAVAILABLE',
        `${file} cannot use a write-ahead log (journal mode ${mode})`,
      );
    // FULL's fsync at every commit would block the event loop; the ledger instead fsyncs the
    // write-ahead log off the loop after each commit and acknowledges only then (sqlite.ts),
    // which is what FULL does, without the wait on the loop. Checkpoints still sync as NORMAL.
    db.pragma('synchronous = NORMAL');
    if (version < SCHEMA_VERSION) {
      db.transaction(() => {
        db.exec(SCHEMA);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Opens a ledger only to read it (gate audit): never creates, migrates or writes anything. A
 * WAL database needs its -shm file beside it, which cannot be created on read-only media; there
 * the file is opened immutable (no locks, no -shm), which is sound only when no write-ahead log
 * holds committed records the file lacks, so a copy with a non-empty -wal is refused instead.
 */
export function openReadOnly(file: string, busyTimeoutMs: number): Db {
  const full = path.resolve(file);
  if (!existsSync(full))
    throw new GateError('LEDGER_UNAVAILABLE', `cannot open the ledger ${file}: it does not exist`);
  try {
    return checkedReadOnly(
      new Database(full, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs }),
      file,
    );
  } catch (err) {
    if (sqliteCode(err) !== 'SQLITE_CANTOPEN')
      throw ledgerError(err, `cannot open the ledger ${file}`);
    if (walSize(full) > 0)
      throw new GateError(
        'LEDGER_UNAVAILABLE',
        `cannot open the ledger ${file} read-only: its write-ahead log ${path.basename(full)}-wal cannot be read here (copy the ledger with sqlite3 .backup, or from a stopped gate)`,
      );
  }
  const uri = `file:${full.replace(/[%?#]/g, (c) => encodeURIComponent(c))}?immutable=1`;
  try {
    return checkedReadOnly(new Database(uri, { readonly: true, fileMustExist: true }), file);
  } catch (err) {
    throw ledgerError(err, `cannot open the ledger ${file} read-only`);
  }
}

function checkedReadOnly(db: Db, file: string): Db {
  try {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId !== APPLICATION_ID)
      throw new GateError('LEDGER_UNAVAILABLE', `${file} is a database, but not a gate ledger`);
    if (version !== SCHEMA_VERSION)
      throw new GateError(
        'LEDGER_UNAVAILABLE',
        `${file} has ledger schema ${version}, this gate reads ${SCHEMA_VERSION}`,
      );
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function walSize(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

function hasTables(db: Db): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_schema LIMIT 1`).get() !== undefined;
}

/** Prepared statements, per connection. */
const statements = new WeakMap<Db, Map<string, Statement>>();
export function sql(d: Db, text: string): Statement {
  let cache = statements.get(d);
  if (!cache) statements.set(d, (cache = new Map()));
  let s = cache.get(text);
  if (!s) cache.set(text, (s = d.prepare(text)));
  return s;
}

export function isBusy(err: unknown): boolean {
  return /^SQLITE_(BUSY|LOCKED)/.test(sqliteCode(err));
}

export function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : '';
}

/** A fault that concerns one record (a duplicate id, a replayed request), not the database. */
export function isRecordFault(err: unknown): boolean {
  const code = sqliteCode(err);
  return code.startsWith('SQLITE_CONSTRAINT') || !code.startsWith('SQLITE_');
}

/** Turns anything the driver or file system throws into LEDGER_UNAVAILABLE with one lowercase line. */
export function ledgerError(err: unknown, what: string): GateError {
  if (err instanceof GateError) return err;
  const code = sqliteCode(err);
  let reason = oneLine(err instanceof Error ? err.message : String(err));
  if (isBusy(err)) reason = `${reason} (another process holds the write lock)`;
  else if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
    reason = `${reason} (the file is corrupt or not a ledger)`;
  return new GateError('LEDGER_UNAVAILABLE', `${what}: ${reason}`, { cause: err });
}

function oneLine(s: string): string {
  const line = s.split('\n')[0]!.trim();
  return line.length > 0 ? line[0]!.toLowerCase() + line.slice(1) : 'unknown error';
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
