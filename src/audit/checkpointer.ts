import type crypto from 'node:crypto';
import { GateError } from '../errors.js';
import { signCheckpoint, type Checkpoint } from './record.js';

/** How often a ledger signs its head (shared by the SQLite and PostgreSQL ledgers). */
export interface CheckpointOptions {
  /** an Ed25519 private key */
  key: crypto.KeyObject;
  /** sign once this many records were appended since the last checkpoint (default 100) */
  everyRecords?: number;
  /** sign once the last checkpoint is this old and records were appended since (default 60) */
  everySeconds?: number;
}

export interface Checkpointer {
  readonly everyRecords: number;
  readonly everySeconds: number;
  /**
   * The checkpoint to store with a ledger of `head.size` records, if one is due: records were
   * appended since `last` (the newest stored checkpoint, if any), and either there are
   * `everyRecords` of them or `last` is `everySeconds` old. Call it inside the transaction that
   * appends, after each record, with `last` read in that transaction (several processes may
   * append to one ledger), and from a timer (`schedule`) so a quiet ledger's tail gets signed too.
   */
  due(
    head: { size: number; hash: string },
    last: { size: number; time: string } | undefined,
  ): Checkpoint | undefined;
  /** Calls `tick` every `everySeconds` until the returned function is called; never keeps the process alive. */
  schedule(tick: () => void): () => void;
}

/**
 * @param now the clock for checkpoint times
 * @param since with no checkpoint stored yet, the time rule counts from here (the ledger's opening)
 */
export function createCheckpointer(
  opts: CheckpointOptions,
  now: () => Date = () => new Date(),
  since: Date = now(),
): Checkpointer {
  const { key } = opts;
  if (key?.type !== 'private' || key.asymmetricKeyType !== 'ed25519')
    throw new GateError(
      'CONFIG_INVALID',
      'the ledger checkpoint key must be an ed25519 private key',
    );
  const everyRecords = opts.everyRecords ?? 100;
  const everySeconds = opts.everySeconds ?? 60;
  if (!Number.isInteger(everyRecords) || everyRecords < 1)
    throw new GateError(
      'CONFIG_INVALID',
      `checkpoint everyRecords must be a positive integer, found ${everyRecords}`,
    );
  if (!(everySeconds > 0) || !Number.isFinite(everySeconds))
    throw new GateError(
      'CONFIG_INVALID',
      `checkpoint everySeconds must be a positive number, found ${everySeconds}`,
    );

  return {
    everyRecords,
    everySeconds,
    due(head, last) {
      const pending = head.size - (last?.size ?? 0);
      if (pending <= 0) return undefined;
      const t = now();
      const from = last ? Date.parse(last.time) : since.getTime();
      // an unreadable stored time counts as old: signing early is harmless, never signing is not
      const old = !(t.getTime() - from < everySeconds * 1000);
      if (pending < everyRecords && !old) return undefined;
      return signCheckpoint(head.size, head.hash, t.toISOString(), key);
    },
    schedule(tick) {
      const timer = setInterval(tick, everySeconds * 1000);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
