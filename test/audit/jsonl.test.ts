import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJsonlLedger } from '../../src/audit/jsonl.js';
import { readDecisions } from '../../src/audit/jsonl-reader.js';
import type { LedgerQuery } from '../../src/audit/ledger.js';
import type { Decision } from '../../src/decision.js';

const decision = (id: string, over: Partial<Decision> = {}): Decision =>
  ({ id, outcome: 'allow', allow: true, environment: 'dev', ...over }) as Decision;

describe('the JSON Lines ledger', () => {
  it('keeps an acknowledged record after a torn line from a crash', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gate-jsonl-')), 'ledger.jsonl');
    const ledger = createJsonlLedger(file);
    await ledger.append(decision('one'), {});
    appendFileSync(file, '{"decision": {"id": "torn", "outc'); // a crash mid-write
    await ledger.append(
      decision('two', {
        outcome: 'override',
        override: { requestId: 'req-1' } as Decision['override'],
      }),
      {},
    );
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2]!).decision.id).toBe('two');
    expect(await ledger.consumed('req-1')).toBe(true);
    expect(await ledger.consumed('req-2')).toBe(false);
  });

  it('refuses to acknowledge when it cannot write', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gate-jsonl-'));
    appendFileSync(path.join(dir, 'file'), 'x');
    const ledger = createJsonlLedger(path.join(dir, 'file', 'ledger.jsonl'));
    await expect(ledger.append(decision('x'), {})).rejects.toMatchObject({
      code: 'LEDGER_UNAVAILABLE',
    });
  });
});

describe('reading and verifying the JSON Lines ledger', () => {
  const override = (id: string, requestId: string) =>
    decision(id, {
      outcome: 'override',
      time: '2026-02-01T00:00:00.000Z',
      subjects: [{ digest: { sha256: 'b'.repeat(64) } }],
      violations: [],
      override: { requestId, requester: 'oncall@acme.example', overridden: ['tests.passed'] },
    } as unknown as Partial<Decision>);
  const plain = (id: string, time: string) =>
    decision(id, { time, subjects: [{ digest: { sha256: 'a'.repeat(64) } }], violations: [] });

  async function ledgerOf(...lines: string[]) {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'gate-jsonl-')), 'ledger.jsonl');
    const ledger = createJsonlLedger(file);
    await ledger.append(plain('one', '2026-01-01T00:00:00.000Z'), {});
    await ledger.append(override('two', 'req-1'), {});
    appendFileSync(file, lines.join(''));
    return { file, ledger };
  }

  it('answers every LedgerQuery filter as the chained backends do', async () => {
    const { file } = await ledgerOf();
    const ids = async (q: LedgerQuery) => (await readDecisions(file, q)).decisions.map((d) => d.id);
    expect(await ids({})).toEqual(['two', 'one']);
    expect(await ids({ subject: `sha256:${'a'.repeat(64)}` })).toEqual(['one']);
    expect(await ids({ from: '2026-01-15T00:00:00Z' })).toEqual(['two']);
    expect(await ids({ to: '2026-02-01T00:00:00.000Z' })).toEqual(['one']);
    expect(await ids({ requester: 'oncall@acme.example' })).toEqual(['two']);
    expect(await ids({ rule: 'tests.passed' })).toEqual(['two']);
    expect(await ids({ outcome: 'allow', environment: 'dev' })).toEqual(['one']);
    await expect(readDecisions(file, { limit: 0 })).rejects.toMatchObject({ code: 'USAGE_ERROR' });
  });

  it('verifies past a torn line, and says it has no hash chain', async () => {
    const { ledger } = await ledgerOf('{"decision": {"id": "torn', '\n');
    expect(await ledger.verify()).toEqual({ ok: true, records: 2, checkpoints: 0, chained: false });
    expect((await ledger.verify(undefined, { expectSize: 3 })).firstBroken).toMatchObject({
      code: 'LEDGER_TRUNCATED',
    });
  });

  it.each([
    [
      'a decision recorded twice',
      `${JSON.stringify({ decision: plain('one', 'x'), input: {} })}\n`,
      'LEDGER_CHAIN_BROKEN',
      'one',
    ],
    [
      'a request overriding twice',
      `${JSON.stringify({ decision: override('three', 'req-1'), input: {} })}\n`,
      'BREAK_GLASS_REPLAYED',
      'three',
    ],
    [
      'a line that is not a record',
      '{"note": "added by hand"}\n',
      'LEDGER_CHAIN_BROKEN',
      undefined,
    ],
  ])('names %s, by line', async (_what, line, code, id) => {
    const { ledger } = await ledgerOf(line);
    const result = await ledger.verify();
    expect(result).toMatchObject({ ok: false, records: 2, chained: false });
    expect(result.firstBroken).toEqual({
      seq: 3,
      code,
      reason: expect.any(String),
      ...(id ? { id } : {}),
    });
  });

  it('refuses checkpoints held outside: there is no chain to check them against', async () => {
    const { ledger } = await ledgerOf();
    const held = { size: 1, headHash: '0'.repeat(64), time: 't', keyId: 'k', signature: 's' };
    await expect(ledger.verify(undefined, { external: [held] })).rejects.toMatchObject({
      code: 'USAGE_ERROR',
    });
  });
});
