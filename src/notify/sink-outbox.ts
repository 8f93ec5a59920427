import { createHash } from 'node:crypto';
import type { Decision } from '../decision.js';
import {
  createSinkStream,
  type RecoverySource,
  type SinkStats,
  type SinkStream,
  type SinkStreamOptions,
} from './sink-stream.js';
import type { SinkConfig } from './sinks.js';

export type { RecoverySource } from './sink-stream.js';

export interface SinkOutboxOptions extends Omit<SinkStreamOptions, 'file' | 'sink'> {
  /** the outbox's base path: each sink's stream is a file beside it (sinkFile) */
  file: string;
  sinks: SinkConfig[];
}

/**
 * The decision stream to every configured sink: one persisted stream (sink-stream.ts) per sink,
 * each in its own file with its own memory, so a sink that is down for days holds back nothing
 * of another that is up. The decision path runs `enqueue` alone.
 */
export function createSinkOutbox(o: SinkOutboxOptions) {
  const streams: Array<[string, SinkStream]> = o.sinks.map((sink) => [
    sink.name,
    createSinkStream({ ...o, file: sinkFile(o.file, sink.name), sink }),
  ]);
  const each = <T>(fn: (s: SinkStream) => Promise<T>) => Promise.all(streams.map(([, s]) => fn(s)));
  return {
    /** Only this on the decision path, after the decision's record is durable. */
    enqueue(d: Decision): void {
      for (const [, s] of streams) s.enqueue(d);
    },
    /** Every stream reads the ledger from its own mark: decisions it does not hold are queued. */
    async recover(ledger: RecoverySource): Promise<number> {
      return (await each((s) => s.recover(ledger))).reduce((a, b) => a + b, 0);
    },
    flush: async () => void (await each((s) => s.flush())),
    deliver: async () => void (await each((s) => s.deliver())),
    /** Per sink: events it has not taken, its last error, how many it took from this process. */
    stats(): Record<string, SinkStats> {
      return Object.fromEntries(streams.map(([name, s]) => [name, s.stats()]));
    },
    /** Events held in memory, all sinks together (each holds at most `memoryLimit`). */
    held: () => streams.reduce((n, [, s]) => n + s.held(), 0),
    /** Why a stream's file could not be read or rewritten in the background last, if it could not. */
    fileError: () => streams.map(([, s]) => s.fileError()).find((e) => e !== undefined),
    close: async (waitMs?: number) => void (await each((s) => s.close(waitMs))),
  };
}

export type SinkOutbox = ReturnType<typeof createSinkOutbox>;

/**
 * A sink's stream file beside the outbox's base path: `outbox.sinks.jsonl` and the sink named
 * `collector` -> `outbox.sinks.collector.jsonl`. A name that is not a plain word (a url, say) is
 * made one, with a short hash of the name so two such names never share a file.
 */
export function sinkFile(base: string, name: string): string {
  const plain = /^[A-Za-z0-9_-]{1,64}$/.test(name);
  const slug = plain
    ? name
    : `${name
        .replace(/^https?:\/\//, '')
        .replace(/[^A-Za-z0-9_-]+/g, '-')
        .slice(0, 48)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
  return `${base.replace(/\.jsonl$/, '')}.${slug}.jsonl`;
}
