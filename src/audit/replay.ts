import type { Decision } from '../decision.js';
import { GateError, isGateError } from '../errors.js';
import { instantiate, type CompiledPolicy } from '../evaluate/policy.js';
import type { PolicyStore } from './policy-store.js';
import { canonical } from './record.js';

/** What a policy said about an input: allowed, or the rules it found violated. */
export interface Verdict {
  allow: boolean;
  /** violated rule ids, sorted */
  violations: string[];
}

/** One evaluation of the recorded input again, and whether it agrees with the record. */
export interface ReplayRun extends Verdict {
  /** the digest of the policy evaluated */
  policy: string;
  same: boolean;
}

export interface Replay {
  id: string;
  /** what the policy said when the decision was made (an override or dry-run changes the answer, not this) */
  recorded: Verdict & { policy: string | undefined };
  /** with the policy the decision was made with, from the policy store */
  then?: ReplayRun;
  /** why `then` is missing: the recorded policy is not in the store (only when `now` is given) */
  thenMissing?: string;
  /** with the current policy, when one is given */
  now?: ReplayRun;
  /** every run agrees with the record */
  same: boolean;
}

/** A decision as recorded, with its policy input decoded. */
export interface RecordedDecision {
  decision: Decision;
  input: unknown;
}

export interface ReplayOptions {
  /** where the policies decisions were made with are kept (policyStoreFor) */
  store: PolicyStore;
  /** the current policy, to see whether it would decide the same */
  now?: CompiledPolicy;
}

/**
 * Replays recorded decisions: the recorded input evaluated again with the policy of the time and
 * with the current one. Stored policies are instantiated once each (they are content-addressed,
 * so a cached one never goes stale).
 */
export function createReplayer(opts: ReplayOptions): (r: RecordedDecision) => Promise<Replay> {
  const loaded = new Map<string, Promise<CompiledPolicy>>();
  const stored = (digest: string) => {
    let p = loaded.get(digest);
    if (!p) {
      p = instantiateStored(opts.store, digest);
      // a failure is not cached: the policy may be copied into the store meanwhile
      p.catch(() => loaded.delete(digest));
      loaded.set(digest, p);
    }
    return p;
  };
  return async ({ decision, input }) => {
    const recorded = {
      policy: decision.digests.policy,
      allow: decision.violations.length === 0,
      violations: decision.violations.map((v) => v.id).sort(),
    };
    const run = (policy: CompiledPolicy): ReplayRun => {
      const result = policy.evaluate(input);
      const again = { allow: result.allow, violations: result.violations.map((v) => v.id).sort() };
      const same =
        canonical(again) === canonical({ allow: recorded.allow, violations: recorded.violations });
      return { policy: policy.digest, ...again, same };
    };
    const then = await stored(recorded.policy ?? '').then(run, (err: unknown) => {
      // without a current policy there is nothing to replay with: the caller must know why
      if (!opts.now || !isGateError(err) || err.code !== 'POLICY_LOAD_FAILED') throw err;
      return err.message;
    });
    const now = opts.now ? run(opts.now) : undefined;
    const runs = [typeof then === 'string' ? undefined : then, now].filter((r) => r !== undefined);
    return {
      id: decision.id,
      recorded,
      ...(typeof then === 'string' ? { thenMissing: then } : { then }),
      ...(now ? { now } : {}),
      same: runs.every((r) => r.same),
    };
  };
}

async function instantiateStored(store: PolicyStore, digest: string): Promise<CompiledPolicy> {
  const bytes = store.load(digest);
  const policy = await instantiate(bytes.wasm, bytes.data, `${store.dir}/${digest}.wasm`);
  if (policy.digest !== digest) {
    throw new GateError(
      'POLICY_LOAD_FAILED',
      `stored policy ${digest.slice(0, 12)} does not match its digest`,
    );
  }
  return policy;
}
