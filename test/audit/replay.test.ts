import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { policyStoreFor, type PolicyStore } from '../../src/audit/policy-store.js';
import { createReplayer, type RecordedDecision } from '../../src/audit/replay.js';
import type { Decision } from '../../src/decision.js';
import { loadCompiledPolicy, type CompiledPolicy } from '../../src/evaluate/policy.js';
import { FIXTURES } from '../helpers.js';

/**
 * Replay over real compiled policies and a real policy store on disk: the recorded input
 * evaluated again with the policy of the time (then) and the current one (now).
 */
const HEX = 'a'.repeat(64);
let strict: CompiledPolicy;
let lenient: CompiledPolicy;
let store: PolicyStore;
let ledgerDir: string;

beforeAll(async () => {
  strict = await loadCompiledPolicy(path.join(FIXTURES, 'policies', 'requires-provenance'));
  lenient = await loadCompiledPolicy(path.join(FIXTURES, 'policies', 'ok'));
  ledgerDir = mkdtempSync(path.join(tmpdir(), 'gate-replay-'));
  store = policyStoreFor({ path: path.join(ledgerDir, 'ledger.db') });
  store.save(strict);
});

/** A deny by the strict policy, as the gate recorded it. */
function recorded(policy = strict.digest): RecordedDecision {
  const input = { subjects: [{ digest: { sha256: HEX } }], environment: 'dev', attestations: [] };
  const violation = { id: 'test.provenance', message: 'm', remediation: 'r', attestations: [] };
  const decision = {
    id: 'd-1',
    outcome: 'deny',
    violations: [violation],
    digests: { policy, trustRoot: 't', config: 'c' },
  } as unknown as Decision;
  return { decision, input };
}

describe('the policy store', () => {
  it('lives beside the ledger, and keeps and returns the bytes it was given', () => {
    expect(store.dir).toBe(path.join(ledgerDir, 'policies'));
    const back = store.load(strict.digest);
    expect(back.wasm.equals(strict.wasm)).toBe(true);
    expect(back.data).toEqual(strict.data);
  });

  it('refuses a digest it does not hold, or that names no file, with POLICY_LOAD_FAILED', () => {
    for (const digest of [lenient.digest, '../ledger', ''])
      expect(() => store.load(digest)).toThrow(
        expect.objectContaining({ code: 'POLICY_LOAD_FAILED' }),
      );
  });
});

describe('replay', () => {
  it('replays with the policy the decision was made with: the same result', async () => {
    const r = await createReplayer({ store })(recorded());
    expect(r).toEqual({
      id: 'd-1',
      recorded: { policy: strict.digest, allow: false, violations: ['test.provenance'] },
      then: { policy: strict.digest, allow: false, violations: ['test.provenance'], same: true },
      same: true,
    });
  });

  it('says what the current policy would decide, with both digests', async () => {
    const r = await createReplayer({ store, now: lenient })(recorded());
    expect(r.then).toMatchObject({ policy: strict.digest, same: true });
    expect(r.now).toEqual({ policy: lenient.digest, allow: true, violations: [], same: false });
    expect(r.same).toBe(false);
  });

  it('compares with the current policy alone when the recorded one is not stored', async () => {
    const r = await createReplayer({ store, now: strict })(recorded(lenient.digest));
    expect(r.then).toBeUndefined();
    expect(r.thenMissing).toMatch(/^policy [0-9a-f]{12} is not in /);
    expect(r).toMatchObject({ now: { policy: strict.digest, same: true }, same: true });
    await expect(createReplayer({ store })(recorded(lenient.digest))).rejects.toMatchObject({
      code: 'POLICY_LOAD_FAILED',
    });
  });

  it('refuses a stored policy whose bytes no longer match its digest', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gate-replay-'));
    const edited = policyStoreFor({ path: path.join(dir, 'ledger.db') });
    edited.save(strict);
    const data = path.join(edited.dir, `${strict.digest}.data.json`);
    writeFileSync(data, JSON.stringify({ gate: { edited: true } }));
    await expect(createReplayer({ store: edited })(recorded())).rejects.toMatchObject({
      code: 'POLICY_LOAD_FAILED',
      message: expect.stringMatching(/does not match its digest/),
    });
  });
});
