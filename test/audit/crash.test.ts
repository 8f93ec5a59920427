import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/record.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { buildWasmBundle } from '../../src/evaluate/opa-cli.js';
import { FIXTURES } from '../helpers.js';

/**
 * The real gate (createGate, the SQLite ledger, a small policy compiled by the real opa, file
 * evidence) in a child process making many concurrent decisions; the child prints a decision id
 * only once gate.check resolved with it (acknowledged). Killed with SIGKILL mid-way, again and
 * again on the same ledger, also two at once: afterwards the chain verifies and holds every
 * acknowledged decision.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CHILD = path.join(import.meta.dirname, 'sqlite-child.ts');
// the subject of a real npm publish attestation (sigstore-js fixture), so evidence verifies
const SUBJECT =
  '7bea9f6e7ff37f5fab0b36bf061200fff03099fd2fd696b91d04bc5e4f225eb9fd6e0cadcad54ba980f43fb352a99e8810b4e0abeb5c0ef2cf9108cd1f258b36';

let dir: string;
let policy: string;
let evidence: string;
let db: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-crash-'));
  policy = path.join(dir, 'policy.tar.gz');
  writeFileSync(policy, await buildWasmBundle(path.join(FIXTURES, 'policies', 'ok')));
  evidence = path.join(dir, 'evidence');
  mkdirSync(evidence);
  copyFileSync(
    path.join(FIXTURES, 'sigstore-js', 'bundles', 'bundleV03-dsse.sigstore'),
    path.join(evidence, 'npm-publish.sigstore.json'),
  );
  db = path.join(dir, 'ledger', 'ledger.db');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Crashed {
  acknowledged: string[];
  finished: boolean;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs a gate child and kills it with SIGKILL once `killAfter` decisions were acknowledged. */
function crashGate(tag: string, killAfter: number): Promise<Crashed> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, 'gate', db, policy, evidence, '100000', tag],
      { cwd: ROOT, env: { ...process.env, GATE_TEST_SUBJECT: SUBJECT } },
    );
    let out = '';
    let stderr = '';
    const acknowledged = () => out.split('\n').filter((l) => l.startsWith(`${tag}-`));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (acknowledged().length >= killAfter && child.exitCode === null) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve({ acknowledged: acknowledged(), finished: out.includes('done\n'), signal, stderr });
    });
  });
}

async function expectIntact(acknowledged: string[]) {
  const ledger = createSqliteLedger({ path: db });
  try {
    const result = await verifyChain(ledger.records(), await ledger.checkpoints());
    expect(result.ok, JSON.stringify(result.firstBroken)).toBe(true);
    expect((await ledger.verify()).ok).toBe(true);
    expect(result.records).toBeGreaterThanOrEqual(acknowledged.length);
    for (const id of acknowledged) {
      const r = await ledger.get(id);
      expect(r, `acknowledged decision ${id} is missing`).toBeDefined();
      expect(r!.decision.outcome).toBe('allow');
      expect(r!.decision.evidence.some((e) => e.status === 'verified')).toBe(true);
    }
    return result.records;
  } finally {
    await ledger.close();
  }
}

describe('a gate killed mid-way (SIGKILL)', () => {
  const acknowledged: string[] = [];

  for (const [round, killAfter] of [
    [1, 60],
    [2, 150],
    [3, 25],
  ] as const) {
    it(`round ${round}: every acknowledged decision is in the ledger, and the chain verifies`, async () => {
      const crashed = await crashGate(`r${round}`, killAfter + Math.floor(Math.random() * 40));
      expect(crashed.stderr).toBe('');
      expect(crashed.signal).toBe('SIGKILL');
      expect(crashed.finished).toBe(false);
      expect(crashed.acknowledged.length).toBeGreaterThanOrEqual(killAfter);
      acknowledged.push(...crashed.acknowledged);
      await expectIntact(acknowledged);
    });
  }

  it('two gates on the same ledger, both killed: one chain with every acknowledged decision', async () => {
    const [a, b] = await Promise.all([crashGate('twoA', 80), crashGate('twoB', 120)]);
    for (const c of [a!, b!]) {
      expect(c.signal).toBe('SIGKILL');
      expect(c.stderr).toBe('');
    }
    acknowledged.push(...a!.acknowledged, ...b!.acknowledged);
    const records = await expectIntact(acknowledged);
    expect(records).toBeGreaterThanOrEqual(acknowledged.length);
  });
});
