import type { PoolClient } from 'pg';

/**
 * Advisory lock keys (classid, objid) of the ledger. Advisory locks are scoped to one database,
 * so ledgers in different databases of one server do not contend.
 */
export const LOCK_CLASS = 0x67617465; // "gate"
export const APPEND_LOCK = 1;
export const MIGRATE_LOCK = 2;

/**
 * The schema, one migration per version, applied in order and recorded in ledger_migrations.
 *
 * records holds the chain: `body` is the record's canonical JSON text exactly as it was hashed
 * (JSONB would reorder keys and normalise numbers, so it is TEXT); the other columns index it.
 * record_subjects and record_rules index the subjects and rule ids, in order; consumed_requests
 * makes a break-glass request single-use across replicas. Every table is append-only: triggers
 * reject UPDATE, DELETE and TRUNCATE, and a record must extend the chain's head.
 */
const MIGRATIONS: string[] = [
  `
CREATE TABLE records (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  id TEXT NOT NULL UNIQUE,
  time TIMESTAMPTZ NOT NULL,
  environment TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'deny', 'override', 'error')),
  requester TEXT,
  prev_hash TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL
);
CREATE INDEX records_time ON records (time);
CREATE INDEX records_environment ON records (environment, seq);
CREATE INDEX records_outcome ON records (outcome, seq);
CREATE INDEX records_requester ON records (requester, seq) WHERE requester IS NOT NULL;

CREATE TABLE record_subjects (
  seq BIGINT NOT NULL REFERENCES records (seq),
  ord INTEGER NOT NULL,
  subject TEXT NOT NULL,
  PRIMARY KEY (seq, ord)
);
CREATE INDEX record_subjects_subject ON record_subjects (subject, seq);

CREATE TABLE record_rules (
  seq BIGINT NOT NULL REFERENCES records (seq),
  ord INTEGER NOT NULL,
  rule TEXT NOT NULL,
  PRIMARY KEY (seq, ord)
);
CREATE INDEX record_rules_rule ON record_rules (rule, seq);

CREATE TABLE checkpoints (
  size BIGINT PRIMARY KEY CHECK (size > 0),
  head_hash TEXT NOT NULL,
  time TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);

CREATE TABLE consumed_requests (
  request_id TEXT PRIMARY KEY,
  seq BIGINT NOT NULL REFERENCES records (seq)
);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION ledger_extends_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq BIGINT := 0;
  head_hash TEXT := repeat('0', 64);
BEGIN
  SELECT seq, hash INTO head_seq, head_hash FROM records ORDER BY seq DESC LIMIT 1;
  IF NOT FOUND THEN
    head_seq := 0;
    head_hash := repeat('0', 64);
  END IF;
  IF NEW.seq <> head_seq + 1 OR NEW.prev_hash <> head_hash THEN
    RAISE EXCEPTION 'record % does not extend the chain head %', NEW.seq, head_seq
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER records_extend_head BEFORE INSERT ON records
  FOR EACH ROW EXECUTE FUNCTION ledger_extends_head();
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER record_subjects_append_only BEFORE UPDATE OR DELETE ON record_subjects
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER record_subjects_no_truncate BEFORE TRUNCATE ON record_subjects
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER record_rules_append_only BEFORE UPDATE OR DELETE ON record_rules
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER record_rules_no_truncate BEFORE TRUNCATE ON record_rules
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER consumed_requests_append_only BEFORE UPDATE OR DELETE ON consumed_requests
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER consumed_requests_no_truncate BEFORE TRUNCATE ON consumed_requests
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- also with session_replication_role = replica, which skips ordinary triggers
ALTER TABLE records ENABLE ALWAYS TRIGGER records_extend_head;
ALTER TABLE records ENABLE ALWAYS TRIGGER records_append_only;
ALTER TABLE records ENABLE ALWAYS TRIGGER records_no_truncate;
ALTER TABLE record_subjects ENABLE ALWAYS TRIGGER record_subjects_append_only;
ALTER TABLE record_subjects ENABLE ALWAYS TRIGGER record_subjects_no_truncate;
ALTER TABLE record_rules ENABLE ALWAYS TRIGGER record_rules_append_only;
ALTER TABLE record_rules ENABLE ALWAYS TRIGGER record_rules_no_truncate;
ALTER TABLE checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
ALTER TABLE checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_truncate;
ALTER TABLE consumed_requests ENABLE ALWAYS TRIGGER consumed_requests_append_only;
ALTER TABLE consumed_requests ENABLE ALWAYS TRIGGER consumed_requests_no_truncate;
`,
  // Break-glass requests (issue 14): their acceptance, refusal and revocation are records of the
  // chain with the outcome 'break-glass' (break-glass-record.ts), found by their request id.
  `
ALTER TABLE records DROP CONSTRAINT records_outcome_check;
ALTER TABLE records ADD CONSTRAINT records_outcome_check
  CHECK (outcome IN ('allow', 'deny', 'override', 'error', 'break-glass'));
CREATE INDEX records_break_glass ON records ((body::jsonb #>> '{breakGlass,requestId}'), seq)
  WHERE outcome = 'break-glass';
`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema up to date in one transaction under an advisory lock, so replicas that start
 * at once apply each migration exactly once and none sees a half-made schema. Idempotent.
 */
export async function migrate(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, MIGRATE_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ledger_migrations (
         version INTEGER PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM ledger_migrations',
    );
    const current = rows[0]?.version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the ledger schema is version ${current}, newer than this gate knows (${MIGRATIONS.length})`,
      );
    }
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v - 1]!);
      await client.query('INSERT INTO ledger_migrations (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** For a read-only ledger: the schema this gate reads must already be there; nothing is created. */
export async function schemaPresent(client: PoolClient): Promise<void> {
  const exists = await client.query(`SELECT to_regclass('ledger_migrations') AS t`);
  const { rows } = exists.rows[0]?.t
    ? await client.query<{ version: number | null }>(
        'SELECT max(version) AS version FROM ledger_migrations',
      )
    : { rows: [] };
  const version = rows[0]?.version ?? 0;
  if (version !== MIGRATIONS.length)
    throw new Error(
      `the ledger schema is version ${version}, this gate reads version ${MIGRATIONS.length}`,
    );
}
