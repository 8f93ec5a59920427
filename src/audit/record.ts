import crypto from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import canonicalizeModule from 'canonicalize';
import type { Decision, Outcome } from '../decision.js';
import { GateError } from '../errors.js';
import { jsonText } from '../util/json-text.js';
import { keyIdOf } from '../verify/key-id.js';

// canonicalize is CommonJS: under NodeNext its default import is the function itself at runtime.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** The hash before the first record. */
export const GENESIS = '0'.repeat(64);

/**
 * One ledger record: the decision, what it rested on, the full policy input for replay, and the
 * hash of the previous record. `hash` is SHA-256 over the RFC 8785 canonical JSON of every other
 * field, so any edit to a record, or a removed or reordered record, breaks the chain.
 */
export interface LedgerRecord {
  /** 1-based position in the chain */
  seq: number;
  /** the decision's id */
  id: string;
  time: string;
  environment: string;
  outcome: Outcome;
  /** "sha256:<hex>" for each subject */
  subjects: string[];
  /** the break-glass requester, for overrides */
  requester?: string;
  /** ids of the violated rules (for an override: the ones it overrode) */
  rules: string[];
  decision: Decision;
  /**
   * base64 of gzip of the policy input's JSON text: the text whose sha256 is the decision's
   * `digests.input` (records before 0.x hold its canonical JSON; both parse the same)
   */
  input: string;
  prevHash: string;
  hash: string;
}

/** A signed statement of the ledger head: lets an auditor check a copy without the gate. */
export interface Checkpoint {
  size: number;
  headHash: string;
  time: string;
  /** sha256 hex of the signing key's DER SPKI */
  keyId: string;
  /** base64 Ed25519 signature over canonical JSON {size, headHash, time} */
  signature: string;
}

/** A stored checkpoint row (both backends; PostgreSQL returns BIGINT sizes as strings). */
export interface CheckpointRow {
  size: number | string;
  head_hash: string;
  time: string;
  key_id: string;
  signature: string;
}

export function toCheckpoint(row: CheckpointRow): Checkpoint {
  return {
    size: Number(row.size),
    headHash: row.head_hash,
    time: row.time,
    keyId: row.key_id,
    signature: row.signature,
  };
}

export function canonical(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined)
    throw new GateError('LEDGER_UNAVAILABLE', 'record cannot be canonicalised');
  return text;
}

export function recordHash(record: Omit<LedgerRecord, 'hash'>): string {
  const { hash: _ignored, ...rest } = record as LedgerRecord;
  return crypto.createHash('sha256').update(canonical(rest)).digest('hex');
}

/** Builds the next record of the chain. */
export function makeRecord(
  seq: number,
  prevHash: string,
  decision: Decision,
  input: unknown,
): LedgerRecord {
  return makeRecordWithBody(seq, prevHash, decision, input).record;
}

/**
 * makeRecord, also handing back `body`: the canonical JSON of the record without its hash, i.e.
 * the exact text `hash` is the SHA-256 of, for a store that keeps it (canonicalising a ~5 KB
 * record again costs as much as building it).
 */
export function makeRecordWithBody(
  seq: number,
  prevHash: string,
  decision: Decision,
  input: unknown,
): { record: LedgerRecord; body: string } {
  const fields: Omit<LedgerRecord, 'hash'> = {
    seq,
    id: decision.id,
    time: decision.time,
    environment: decision.environment,
    outcome: decision.outcome,
    ...indexedFields(decision),
    decision,
    // the fastest level: the ledger is written on every decision, read on replay only
    input: gzipSync(inputTextOf(input), { level: 1 }).toString('base64'),
    prevHash,
  };
  const body = canonical(fields);
  const hash = crypto.createHash('sha256').update(body).digest('hex');
  return { record: { ...fields, hash }, body };
}

function inputTextOf(input: unknown): string {
  if (input !== null && typeof input === 'object') return jsonText(input);
  const text = JSON.stringify(input);
  if (text === undefined) throw new GateError('LEDGER_UNAVAILABLE', 'input cannot be recorded');
  return text;
}

/** The fields of a decision that queries look up (LedgerQuery): indexed by every backend. */
export function indexedFields(
  decision: Decision,
): Pick<LedgerRecord, 'subjects' | 'requester' | 'rules'> {
  return {
    subjects: decision.subjects.flatMap((s) =>
      Object.entries(s.digest).map(([alg, hex]) => `${alg}:${hex}`),
    ),
    ...(decision.override ? { requester: decision.override.requester } : {}),
    rules: decision.override?.overridden ?? decision.violations.map((v) => v.id),
  };
}

/** The recorded policy input, for replay. */
export function recordedInput(record: LedgerRecord): unknown {
  return JSON.parse(gunzipSync(Buffer.from(record.input, 'base64')).toString('utf8'));
}

export function signCheckpoint(
  size: number,
  headHash: string,
  time: string,
  key: crypto.KeyObject,
): Checkpoint {
  return {
    size,
    headHash,
    time,
    // the one key id form the gate reports everywhere (cosign's hint: base64 of the SPKI's SHA-256)
    keyId: keyIdOf(crypto.createPublicKey(key)),
    signature: crypto
      .sign(null, Buffer.from(canonical({ size, headHash, time })), key)
      .toString('base64'),
  };
}

export function checkpointVerifies(c: Checkpoint, publicKey: crypto.KeyObject): boolean {
  try {
    const message = Buffer.from(canonical({ size: c.size, headHash: c.headHash, time: c.time }));
    return crypto.verify(null, message, publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

// Verification lives in verify-chain.ts; these names stay importable from here.
export {
  checkCheckpoints,
  verifyChain,
  type ChainVerification,
  type VerifyOptions,
} from './verify-chain.js';
