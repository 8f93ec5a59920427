import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJsonlLedger } from '../../src/audit/jsonl.js';
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
