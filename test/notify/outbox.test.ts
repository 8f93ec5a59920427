import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { breakGlassMessage } from '../../src/notify/message.js';
import { createOutbox, type OutboxOptions, type Webhook } from '../../src/notify/outbox.js';

/**
 * A real webhook receiver on 127.0.0.1 that can be down (nothing listening: connection refused),
 * failing (500) or up (200), on the same port throughout, so the outbox's URLs never change.
 */
class Receiver {
  status = 200;
  /** every request that reached the server, whatever it answered */
  readonly seen: Array<{ path: string; headers: IncomingHttpHeaders; body: any; status: number }> =
    [];
  private server: Server | undefined;

  private constructor(readonly port: number) {}

  /** Reserves a free port and leaves it closed: the receiver starts down. */
  static async down(): Promise<Receiver> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return new Receiver(port);
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Only requests it accepted: what a Slack channel would show. */
  delivered(path?: string) {
    return this.seen.filter((r) => r.status === 200 && (path === undefined || r.path === path));
  }

  async up(status = 200): Promise<void> {
    this.status = status;
    if (this.server) return;
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (d) => (text += d));
      req.on('end', () => {
        const status = this.status;
        this.seen.push({ path: req.url!, headers: req.headers, body: JSON.parse(text), status });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function decision(n: number): Decision {
  return {
    id: `dec-${n}`,
    time: '2026-01-02T03:04:05Z',
    gateVersion: '0.0.0',
    environment: 'production',
    subjects: [{ name: 'app.tgz', digest: { sha256: 'a'.repeat(64) } }],
    mode: 'enforce',
    outcome: 'override',
    allow: true,
    violations: [],
    warnings: [],
    rules: [],
    evidence: [],
    sourceFailures: [],
    override: {
      requestId: `bg-${n}`,
      requester: 'alice@example.com',
      justification: 'hotfix for incident 42',
      ticket: `INC-${n}`,
      expiresAt: '2026-01-02T04:04:05Z',
      signers: ['bob@example.com'],
      overridden: ['provenance.required'],
    },
    digests: { trustRoot: 'sha256:' + 'b'.repeat(64), config: 'sha256:' + 'c'.repeat(64) },
  };
}

let dir: string;
let receiver: Receiver;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gate-outbox-'));
  receiver = await Receiver.down();
  clock = 1_000_000;
});
afterEach(async () => {
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** An outbox over the test's file; calling it again is a restart of the gate. */
function outbox(webhooks: Webhook[], opts: Partial<OutboxOptions> = {}) {
  return createOutbox({
    file: join(dir, 'notify', 'outbox.jsonl'),
    webhooks,
    now,
    backoffMs: 1_000,
    timeoutMs: 2_000,
    ...opts,
  });
}

const tickets = (rs: Array<{ body: any }>) => rs.map((r) => r.body.decision.override.ticket).sort();

describe('outbox against a webhook receiver that is down, then recovers', () => {
  it('keeps messages across a restart while the receiver refuses, then fails, then delivers each once', async () => {
    const hooks = [{ url: receiver.url('/hook') }];
    const first = outbox(hooks);
    first.enqueue(breakGlassMessage(decision(1)));
    first.enqueue(breakGlassMessage(decision(2)));
    // Connection refused: nothing listens on the port.
    expect(await first.deliver()).toEqual({ delivered: 0, pending: 2 });
    expect(first.pending().map((p) => p.attempts)).toEqual([1, 1]);

    // The gate restarts: a new outbox over the same file still has both.
    const second = outbox(hooks);
    expect(second.pending()).toHaveLength(2);
    await receiver.up(500);
    clock += 1_000;
    expect(await second.deliver()).toEqual({ delivered: 0, pending: 2 });
    expect(receiver.seen.map((r) => r.status)).toEqual([500, 500]);
    expect(second.pending().map((p) => p.attempts)).toEqual([2, 2]);

    receiver.status = 200;
    clock += 2_000;
    expect(await second.deliver()).toEqual({ delivered: 2, pending: 0 });
    expect(tickets(receiver.delivered())).toEqual(['INC-1', 'INC-2']);

    // Nothing is sent again: not by later passes, not after another restart.
    clock += 60_000;
    expect(await second.deliver()).toEqual({ delivered: 0, pending: 0 });
    expect(await outbox(hooks).deliver()).toEqual({ delivered: 0, pending: 0 });
    expect(receiver.seen).toHaveLength(4);
  });

  it('respects the backoff: doubling per failed attempt, capped at maxBackoffMs', async () => {
    const box = outbox([{ url: receiver.url('/hook') }], { maxBackoffMs: 3_000 });
    box.enqueue({ text: 'hello' });
    await receiver.up(500);
    const attemptsAt = async (advance: number) => {
      clock += advance;
      await box.deliver();
      return receiver.seen.length;
    };
    expect(await attemptsAt(0)).toBe(1); // a new message is due at once
    expect(await attemptsAt(999)).toBe(1); // 1 s after the first failure
    expect(await attemptsAt(1)).toBe(2);
    expect(await attemptsAt(1_999)).toBe(2); // 2 s after the second
    expect(await attemptsAt(1)).toBe(3);
    expect(await attemptsAt(2_999)).toBe(3); // 4 s, capped at 3 s
    expect(await attemptsAt(1)).toBe(4);
    expect(await attemptsAt(2_999)).toBe(4);
    receiver.status = 200;
    expect(await attemptsAt(1)).toBe(5);
    expect(box.pending()).toEqual([]);
    // The backoff survives a restart: it is computed from the persisted attempts.
    const again = outbox([{ url: receiver.url('/hook') }]);
    again.enqueue({ text: 'second' });
    receiver.status = 500;
    await again.deliver();
    const restarted = outbox([{ url: receiver.url('/hook') }]);
    clock += 999;
    await restarted.deliver();
    expect(receiver.seen).toHaveLength(6);
    clock += 1;
    await restarted.deliver();
    expect(receiver.seen).toHaveLength(7);
  });

  it('delivers once per message per webhook even when passes overlap', async () => {
    const box = outbox([{ url: receiver.url('/hook') }]);
    await receiver.up(200);
    for (let i = 0; i < 5; i++) box.enqueue(breakGlassMessage(decision(i)));
    // The gate starts a pass after every override without waiting for the previous one.
    const passes = await Promise.all([box.deliver(), box.deliver(), box.deliver()]);
    expect(passes.reduce((n, p) => n + p.delivered, 0)).toBe(5);
    expect(tickets(receiver.seen)).toEqual(['INC-0', 'INC-1', 'INC-2', 'INC-3', 'INC-4']);
    expect(box.pending()).toEqual([]);
  });
});

describe('outbox file', () => {
  it('a torn last line from a crash mid-write loses no acknowledged message', async () => {
    const hooks = [{ url: receiver.url('/hook') }];
    const file = join(dir, 'notify', 'outbox.jsonl');
    const before = outbox(hooks);
    before.enqueue(breakGlassMessage(decision(1)));
    await before.deliver(); // refused: one attempt recorded
    // The process dies while writing the next record: half a JSON line, no newline.
    const torn = JSON.stringify({ type: 'message', id: 'torn', at: clock, body: { text: 'x' } });
    appendFileSync(file, torn.slice(0, torn.length / 2));

    const after = outbox(hooks);
    expect(after.pending().map((p) => p.message.body)).toEqual([breakGlassMessage(decision(1))]);
    // Acknowledged after the crash: it must not be glued to the torn line and lost.
    after.enqueue(breakGlassMessage(decision(2)));
    expect(outbox(hooks).pending()).toHaveLength(2);

    await receiver.up(200);
    clock += 1_000;
    expect(await outbox(hooks).deliver()).toEqual({ delivered: 2, pending: 0 });
    expect(tickets(receiver.delivered())).toEqual(['INC-1', 'INC-2']);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.filter((l) => l.startsWith('{"type":"message","id":"torn"'))).toHaveLength(1);
    expect(outbox(hooks).pending()).toEqual([]);
  });

  it('an enqueue is on disk before it returns', () => {
    const box = outbox([{ url: receiver.url('/a') }, { url: receiver.url('/b') }]);
    box.enqueue({ text: 'durable' });
    const lines = readFileSync(join(dir, 'notify', 'outbox.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ type: 'message', webhook: receiver.url('/a') }),
      expect.objectContaining({ type: 'message', webhook: receiver.url('/b') }),
    ]);
  });

  it('an unwritable outbox is LEDGER_UNAVAILABLE', () => {
    appendFileSync(join(dir, 'blocker'), 'a file, not a folder');
    const box = createOutbox({ file: join(dir, 'blocker', 'outbox.jsonl'), webhooks: [] });
    expect(() => box.enqueue({ text: 'x' })).toThrow(
      expect.objectContaining({ code: 'LEDGER_UNAVAILABLE' }),
    );
  });
});

describe('what the receiver gets', () => {
  it('each webhook its own copy, the bearer token only where configured, a Slack-compatible body', async () => {
    const box = outbox([
      { url: receiver.url('/slack') },
      { url: receiver.url('/audit'), token: 's3cret-token' },
    ]);
    await receiver.up(200);
    box.enqueue(breakGlassMessage(decision(7)));
    expect(await box.deliver()).toEqual({ delivered: 2, pending: 0 });

    const [slack] = receiver.delivered('/slack');
    const [audit] = receiver.delivered('/audit');
    expect(receiver.seen).toHaveLength(2);
    expect(slack!.headers.authorization).toBeUndefined();
    expect(audit!.headers.authorization).toBe('Bearer s3cret-token');
    expect(slack!.headers['content-type']).toBe('application/json');
    expect(slack!.body).toEqual(audit!.body);

    const body = slack!.body;
    expect(typeof body.text).toBe('string');
    expect(body.text).toContain('break-glass override for production');
    expect(body.text).toContain(`app.tgz sha256:${'a'.repeat(64)}`);
    expect(body.text).toContain('alice@example.com');
    expect(body.text).toContain('INC-7');
    expect(body.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: body.text } },
      { type: 'section', text: { type: 'mrkdwn', text: expect.any(String) } },
    ]);
    const detail = body.blocks[1].text.text as string;
    expect(detail).toContain('*justification:* hotfix for incident 42');
    expect(detail).toContain('*overrode:* provenance.required');
    expect(detail).toContain('*signers:* bob@example.com');
    expect(detail).toContain('*decision:* dec-7 at 2026-01-02T03:04:05Z');
    expect(body.decision).toMatchObject({ id: 'dec-7', outcome: 'override' });
    // The token is configuration, never part of the persisted message.
    expect(readFileSync(join(dir, 'notify', 'outbox.jsonl'), 'utf8')).not.toContain('s3cret');
  });

  it('one webhook down does not hold back the other, and each is retried on its own', async () => {
    const other = await Receiver.down();
    try {
      await other.up(200);
      const box = outbox([{ url: receiver.url('/down') }, { url: other.url('/up') }]);
      box.enqueue(breakGlassMessage(decision(3)));
      expect(await box.deliver()).toEqual({ delivered: 1, pending: 1 });
      expect(box.pending().map((p) => p.message.webhook)).toEqual([receiver.url('/down')]);
      await receiver.up(200);
      clock += 1_000;
      expect(await box.deliver()).toEqual({ delivered: 1, pending: 0 });
      expect(tickets(receiver.delivered())).toEqual(['INC-3']);
      expect(tickets(other.delivered())).toEqual(['INC-3']);
    } finally {
      await other.stop();
    }
  });

  it('a receiver that never answers is a timeout attempt, retried later', async () => {
    const hang = createServer(() => {});
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/hook`;
      const box = outbox([{ url }], { timeoutMs: 100 });
      box.enqueue({ text: 'x' });
      expect(await box.deliver()).toEqual({ delivered: 0, pending: 1 });
      const log = readFileSync(join(dir, 'notify', 'outbox.jsonl'), 'utf8');
      expect(log).toContain('"error":"timeout"');
    } finally {
      hang.closeAllConnections();
      await new Promise((resolve) => hang.close(resolve));
    }
  });
});
