import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendLinesDurably } from '../util/append.js';
import { GateError } from '../errors.js';

export interface Webhook {
  url: string;
  /** a bearer token, when the receiver wants one */
  token?: string;
}

export interface OutboxOptions {
  file: string;
  webhooks: Webhook[];
  now?: () => number;
  /** first retry delay; doubles per failed attempt up to maxBackoffMs */
  backoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
}

interface Entry {
  type: 'message' | 'attempt' | 'delivered';
  id: string;
  at: number;
  webhook?: string;
  body?: unknown;
  error?: string;
}

/**
 * A persisted outbox: a message is written (and fsynced) before anyone tries to send it, and
 * stays pending until a webhook accepts it, so an outage of the receiver loses nothing. The log
 * is append-only JSON Lines: messages, failed attempts, deliveries.
 */
export function createOutbox(o: OutboxOptions) {
  const now = o.now ?? Date.now;
  const backoff = o.backoffMs ?? 1000;
  const maxBackoff = o.maxBackoffMs ?? 15 * 60_000;

  function append(entries: Entry[]): void {
    try {
      appendLinesDurably(o.file, entries);
    } catch (err) {
      throw new GateError('LEDGER_UNAVAILABLE', `cannot write the outbox ${o.file}`, {
        cause: err,
      });
    }
  }

  /** Messages not yet delivered, with their failed attempts. */
  function pending(): Array<{ message: Entry; attempts: number; lastAt: number }> {
    const state = new Map<string, { message: Entry; attempts: number; lastAt: number }>();
    for (const e of readEntries(o.file)) {
      if (e.type === 'message') state.set(e.id, { message: e, attempts: 0, lastAt: 0 });
      const s = state.get(e.id);
      if (s && e.type === 'attempt') Object.assign(s, { attempts: s.attempts + 1, lastAt: e.at });
      if (e.type === 'delivered') state.delete(e.id);
    }
    return [...state.values()];
  }

  /** One pass over pending messages whose backoff has elapsed. */
  async function deliverDue(): Promise<{ delivered: number; pending: number }> {
    let delivered = 0;
    const due = pending().filter(
      (p) =>
        p.attempts === 0 ||
        now() - p.lastAt >= Math.min(maxBackoff, backoff * 2 ** (p.attempts - 1)),
    );
    for (const p of due) {
      const hook = o.webhooks.find((w) => w.url === p.message.webhook) ?? {
        url: p.message.webhook!,
      };
      const error = await post(hook, p.message.body, o.timeoutMs ?? 5000);
      append([
        error
          ? { type: 'attempt', id: p.message.id, at: now(), error }
          : { type: 'delivered', id: p.message.id, at: now() },
      ]);
      if (!error) delivered++;
    }
    return { delivered, pending: pending().length };
  }

  let queue: Promise<unknown> = Promise.resolve();

  return {
    /** Durable before it returns: one message per configured webhook. */
    enqueue(body: unknown): void {
      append(
        o.webhooks.map((w) => ({
          type: 'message' as const,
          id: randomUUID(),
          at: now(),
          webhook: w.url,
          body,
        })),
      );
    },
    pending,
    /**
     * One pass over pending messages whose backoff has elapsed. Passes never overlap: a call made
     * while one runs starts after it, so no message is posted twice by the same outbox.
     */
    deliver(): Promise<{ delivered: number; pending: number }> {
      const pass = queue.then(deliverDue);
      queue = pass.catch(() => undefined);
      return pass;
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;

async function post(hook: Webhook, body: unknown, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(hook.token ? { authorization: `Bearer ${hook.token}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? undefined : `http ${res.status}`;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
  }
}

function readEntries(file: string): Entry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new GateError('LEDGER_UNAVAILABLE', `cannot read the outbox ${file}`, { cause: err });
  }
  return text.split('\n').flatMap((line) => {
    try {
      return line ? [JSON.parse(line) as Entry] : [];
    } catch {
      return []; // a torn last line from a crash: its message was never acknowledged
    }
  });
}
