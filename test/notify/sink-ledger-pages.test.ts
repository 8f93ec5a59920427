import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { openAuditLedger } from '../../src/audit/open.js';
import type { Decision } from '../../src/decision.js';
import { ledgerPages } from '../../src/notify/ledger-pages.js';

/**
 * Recovery (the sink streams) and gate recheck read the ledger past its page of 1,000 records:
 * a real SQLite ledger with 2,500 decisions made in four milliseconds, 700 in most, so pages end
 * inside a millisecond, whose other records the next page must still give.
 */
let dir: string;
let ledger: AuditLedger;
const at = (n: number) =>
  new Date(Date.UTC(2026, 0, 2, 3, 4, 5) + Math.floor(n / 700)).toISOString();

function decision(n: number): Decision {
  return {
    id: `dec-${String(n).padStart(5, '0')}`,
    time: at(n),
    gateVersion: '0.0.0',
    environment: n % 2 ? 'production' : 'staging',
    subjects: [{ digest: { sha256: n.toString(16).padStart(64, '0') } }],
    mode: 'enforce',
    outcome: 'allow',
    allow: true,
    violations: [],
    warnings: [],
    rules: [],
    evidence: [],
    sourceFailures: [],
    digests: { trustRoot: 'sha256:' + 'b'.repeat(64), config: 'sha256:' + 'c'.repeat(64) },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-pages-'));
  ledger = await openAuditLedger({ backend: 'sqlite', path: path.join(dir, 'ledger.db') });
  for (let i = 0; i < 2500; i += 250) {
    await Promise.all(Array.from({ length: 250 }, (_, j) => ledger.append(decision(i + j), {})));
  }
}, 120_000);
afterAll(async () => {
  await ledger?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function all(q: Parameters<typeof ledgerPages>[1]): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of ledgerPages(ledger, q)) ids.push(r.id);
  return ids;
}

describe('reading the ledger a page at a time', () => {
  it('yields every record in the window once, past page boundaries inside one millisecond', async () => {
    const ids = await all({ from: at(0) });
    expect(ids).toHaveLength(2500);
    expect(new Set(ids).size).toBe(2500);
    const production = await all({ from: at(0), environment: 'production' });
    expect(production).toHaveLength(1250);
    // the window: from inclusive, to exclusive
    const middle = await all({ from: at(700), to: at(2100) });
    expect(middle.sort()).toEqual(Array.from({ length: 1400 }, (_, i) => decision(700 + i).id));
  });
});
