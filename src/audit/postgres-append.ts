import type { PoolClient } from 'pg';
import type { Decision } from '../decision.js';
import type { LedgerEntry } from './break-glass-record.js';
import { GENESIS, canonical, type Checkpoint } from './record.js';

/** A record with its subject, rule and consumed break-glass request index rows, in one statement. */
export const INSERT_RECORD = `
WITH r AS (
  INSERT INTO records (seq, id, time, environment, outcome, requester, prev_hash, hash, body)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  RETURNING seq
), s AS (
  INSERT INTO record_subjects (seq, ord, subject)
  SELECT r.seq, t.ord, t.subject FROM r, unnest($10::text[]) WITH ORDINALITY AS t (subject, ord)
), u AS (
  INSERT INTO record_rules (seq, ord, rule)
  SELECT r.seq, t.ord, t.rule FROM r, unnest($11::text[]) WITH ORDINALITY AS t (rule, ord)
), c AS (
  INSERT INTO consumed_requests (request_id, seq)
  SELECT $12::text, r.seq FROM r WHERE $12::text IS NOT NULL
)
SELECT seq FROM r`;

/** The head and the newest checkpoint, read under the append lock. */
const CHAIN_STATE = `
SELECT h.seq, h.hash, c.size AS checkpoint_size, c.time AS checkpoint_time
FROM (SELECT 1) AS one
LEFT JOIN (SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1) AS h ON true
LEFT JOIN (SELECT size, time FROM checkpoints ORDER BY size DESC LIMIT 1) AS c ON true`;

export interface ChainState {
  head: { size: number; hash: string };
  /** the newest checkpoint */
  last?: { size: number; time: string };
}

export async function chainState(client: PoolClient): Promise<ChainState> {
  const { rows } = await client.query<{
    seq: string | null;
    hash: string | null;
    checkpoint_size: string | null;
    checkpoint_time: string | null;
  }>(CHAIN_STATE);
  const row = rows[0];
  return {
    head: { size: Number(row?.seq ?? 0), hash: row?.hash ?? GENESIS },
    ...(row?.checkpoint_size != null && row.checkpoint_time != null
      ? { last: { size: Number(row.checkpoint_size), time: row.checkpoint_time } }
      : {}),
  };
}

/** Stores a signed checkpoint (inside the append transaction). */
export async function insertCheckpoint(client: PoolClient, c: Checkpoint): Promise<void> {
  await client.query(
    'INSERT INTO checkpoints (size, head_hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)',
    [c.size, c.headHash, c.time, c.keyId, c.signature],
  );
}

export function insertValues(record: LedgerEntry, decision?: Decision): unknown[] {
  // an override of a request reusable until it expires consumes nothing; any other is single use
  const consumes =
    decision?.outcome === 'override' && decision.override?.reuse !== 'until_expiry'
      ? decision.override?.requestId
      : undefined;
  const requester = 'requester' in record ? record.requester : undefined;
  return [
    record.seq,
    record.id,
    record.time,
    record.environment,
    record.outcome,
    requester ?? null,
    record.prevHash,
    record.hash,
    canonical(record),
    record.subjects,
    record.rules,
    consumes ?? null,
  ];
}

/** A unique index that refuses a record says why in the ledger's words. */
export function explainConflict(err: unknown, record: LedgerEntry): unknown {
  const e = err as { code?: string; constraint?: string };
  if (e.code !== '23505') return err;
  if (e.constraint === 'records_id_key') {
    return new Error(`decision ${record.id} is already recorded`, { cause: err });
  }
  if (e.constraint === 'consumed_requests_pkey') {
    const requestId = 'decision' in record ? record.decision.override?.requestId : undefined;
    return new Error(`break-glass request ${requestId} was already used`, { cause: err });
  }
  return err;
}
