import { createHash, type KeyObject } from 'node:crypto';
import { checkCheckpoints, GENESIS, type ChainVerification, type Checkpoint } from './record.js';
import Database from 'better-sqlite3';

type Row = [number, string, string, string, string, string | null, string, string, string];

/** Rows checked per step; the event loop runs between steps. */
const STEP = 5000;
const HEAD = '{"decision":{';
const TAIL = ',"environment":';

/**
 * verifyChain (record.ts) over the stored rows instead of parsed records, with the same checks in
 * the same order and the same answers: each row's seq is the next number, its prev_hash the
 * previous row's hash, its hash the SHA-256 of its body (the canonical JSON the hash was made
 * over, so no re-canonicalisation is needed), its indexed columns equal to the body's fields, its
 * id the decision's; then every checkpoint. Several times faster than parsing and
 * re-canonicalising each record, which is what an auditor's generic check does.
 */
export async function verifyStoredChain(
  file: string,
  busyTimeoutMs: number,
  checkpoints: Checkpoint[],
  publicKey?: KeyObject,
): Promise<ChainVerification> {
  const wanted = new Set(checkpoints.map((c) => c.size));
  const heads = new Map<number, string>();
  let prev = GENESIS;
  let n = 0;
  // Its own connection: one read transaction (a consistent snapshot) streams every row while the
  // ledger's connection goes on appending between steps.
  const db = new Database(file, { fileMustExist: true, timeout: busyTimeoutMs });
  try {
    const rows = db
      .prepare(
        'SELECT seq, id, time, environment, outcome, requester, prev_hash, hash, body FROM records ORDER BY seq',
      )
      .raw(true)
      .iterate() as IterableIterator<Row>;
    for (const row of rows) {
      n++;
      const [seq, id, , , , , prevHash, hash, body] = row;
      const broken = (reason: string): ChainVerification => ({
        ok: false,
        records: n - 1,
        checkpoints: 0,
        firstBroken: { seq, id, reason },
      });
      if (seq !== n) return broken(`expected record ${n}, found ${seq}`);
      if (prevHash !== prev) return broken('its previous hash does not match the record before it');
      if (createHash('sha256').update(body).digest('hex') !== hash)
        return broken('its content does not match its hash (edited)');
      if (!columnsMatch(row))
        return broken('its indexed columns do not match its content (edited)');
      if (wanted.has(n)) heads.set(n, hash);
      prev = hash;
      if (n % STEP === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    db.close();
  }
  return checkCheckpoints(checkpoints, heads, n, publicKey);
}

/**
 * The body is canonical JSON with sorted keys: the decision object first, then environment, id,
 * input, outcome, prevHash, requester, rules, seq, subjects, time, which hold no objects, so the
 * last `,"environment":` (a key: quotes inside strings are escaped) ends the decision.
 */
function columnsMatch([seq, id, time, environment, outcome, requester, prevHash, , body]: Row) {
  if (!body.startsWith(HEAD)) return false;
  const at = body.lastIndexOf(TAIL);
  if (at < 0) return false;
  try {
    const tail = JSON.parse(`{${body.slice(at + 1)}`) as Record<string, unknown>;
    const decision = JSON.parse(body.slice(HEAD.length - 1, at)) as { id?: unknown };
    return (
      tail.seq === seq &&
      tail.id === id &&
      tail.time === time &&
      tail.environment === environment &&
      tail.outcome === outcome &&
      tail.requester === (requester ?? undefined) &&
      tail.prevHash === prevHash &&
      decision.id === id
    );
  } catch {
    return false;
  }
}
