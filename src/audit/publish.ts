import { appendLinesDurably } from '../util/append.js';
import type { Checkpoint } from './record.js';

/** Where a signed checkpoint goes besides the database (the gate wires its webhook outbox). */
export type CheckpointHook = (checkpoint: Checkpoint) => void;

/** Checkpoints waiting for a channel that failed; the oldest are dropped past this. */
const MAX_PENDING = 1000;

/**
 * Publishes each checkpoint outside the database once it is committed, so that deleting the
 * newest records together with their checkpoint rows cannot go unnoticed: appended (fsynced) to
 * the checkpoint log, a JSON Lines file the gate only appends to, and handed to the hook. A
 * channel that fails keeps its checkpoints and tries again, in order, with the next publication
 * (or the checkpoint timer's tick); it never fails the decision, whose record is already durable.
 * Returns undefined when there is nowhere to publish.
 */
export function createPublisher(opts: {
  log?: string | undefined;
  onCheckpoint?: CheckpointHook | undefined;
}): ((signed: Checkpoint[]) => void) | undefined {
  const { log, onCheckpoint } = opts;
  const channels: Array<(c: Checkpoint) => void> = [];
  if (log) channels.push((c) => appendLinesDurably(log, [c]));
  if (onCheckpoint) channels.push(onCheckpoint);
  if (channels.length === 0) return undefined;
  const pending = channels.map(() => [] as Checkpoint[]);
  return (signed) => {
    channels.forEach((send, i) => {
      const queue = pending[i]!;
      queue.push(...signed);
      queue.splice(0, Math.max(0, queue.length - MAX_PENDING));
      while (queue.length > 0) {
        try {
          send(queue[0]!);
        } catch {
          return; // kept: the next publication tries again
        }
        queue.shift();
      }
    });
  };
}
