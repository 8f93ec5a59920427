import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/**
 * Load shedding. A server that takes every request piles work up until clients time out while it
 * goes on deciding for nobody (issue 12 measured 363 of 723 requests timing out at 200 clients).
 * Decisions here run at most `maxConcurrent` at once; up to `maxQueue` more wait their turn, in
 * order, for at most `maxQueueWaitMs`. Past that the answer is immediate: 503 SERVER_OVERLOADED
 * with Retry-After (the admission webhook turns it into a denial that says why). A request whose
 * client has gone while it waited is never started.
 */
export interface LoadOptions {
  /** decisions made at once (default 32) */
  maxConcurrent?: number;
  /** decisions waiting for a turn (default 256); 0: none wait */
  maxQueue?: number;
  /** the longest a decision waits for a turn before it is shed (default 5000 ms) */
  maxQueueWaitMs?: number;
  /** the Retry-After sent with a shed request, in seconds (default 1) */
  retryAfterSeconds?: number;
}

export interface LoadStats {
  inFlight: number;
  queued: number;
  /** answered 503 at once: no turn and no room to wait, or waited too long */
  shed: number;
  /** never started: the client had gone while it waited */
  abandoned: number;
}

export interface Limiter {
  /** Runs `fn` in its turn; `left` aborts when the client goes away. */
  run<T>(fn: () => Promise<T>, left?: AbortSignal): Promise<T>;
  stats(): LoadStats;
}

interface Waiting {
  start: () => void;
  fail: (err: Error) => void;
  /** aborted when the client goes away */
  left?: AbortSignal;
  timer: NodeJS.Timeout;
}

/** Nobody reads this answer: 499, as proxies log a client that closed its request. */
const gone = () =>
  new HttpError(499, 'CLIENT_GONE', 'the client went away before its decision started');

export function createLimiter(o: LoadOptions = {}): Limiter {
  const maxConcurrent = Math.max(1, o.maxConcurrent ?? 32);
  const maxQueue = Math.max(0, o.maxQueue ?? 256);
  const maxWaitMs = o.maxQueueWaitMs ?? 5000;
  const retryAfter = String(o.retryAfterSeconds ?? 1);
  const queue: Waiting[] = [];
  const counts = { inFlight: 0, shed: 0, abandoned: 0 };

  const overloaded = (why: string) => {
    counts.shed++;
    return new HttpError(
      503,
      'SERVER_OVERLOADED',
      `the gate is overloaded (${why}); retry after ${retryAfter} s`,
      { 'retry-after': retryAfter },
    );
  };

  /** Hands a freed turn to the first waiting request whose client is still there. */
  function next(): void {
    while (counts.inFlight < maxConcurrent && queue.length > 0) {
      const w = queue.shift()!;
      clearTimeout(w.timer);
      if (w.left?.aborted) {
        counts.abandoned++;
        w.fail(gone());
        continue;
      }
      w.start();
    }
  }

  return {
    run<T>(fn: () => Promise<T>, left?: AbortSignal): Promise<T> {
      const go = (): Promise<T> => {
        counts.inFlight++;
        return fn().finally(() => {
          counts.inFlight--;
          next();
        });
      };
      if (counts.inFlight < maxConcurrent && queue.length === 0) return go();
      if (queue.length >= maxQueue) {
        return Promise.reject(
          overloaded(`${maxConcurrent} decisions in progress and ${maxQueue} waiting`),
        );
      }
      return new Promise<T>((resolve, reject) => {
        const w: Waiting = {
          start: () => void go().then(resolve, reject),
          fail: reject,
          ...(left ? { left } : {}),
          timer: setTimeout(() => {
            const i = queue.indexOf(w);
            if (i >= 0) queue.splice(i, 1);
            reject(overloaded(`no turn within ${maxWaitMs} ms`));
          }, maxWaitMs),
        };
        w.timer.unref();
        queue.push(w);
        // a client that leaves while waiting frees its place at once
        left?.addEventListener(
          'abort',
          () => {
            const i = queue.indexOf(w);
            if (i < 0) return;
            queue.splice(i, 1);
            clearTimeout(w.timer);
            counts.abandoned++;
            reject(gone());
          },
          { once: true },
        );
      });
    },
    stats: () => ({ ...counts, queued: queue.length }),
  };
}

/** Aborts when the client closes its connection before the response was sent. */
export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const socket = request.raw.socket;
  if (socket?.destroyed) controller.abort();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
