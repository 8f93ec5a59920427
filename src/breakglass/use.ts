import type { ArtifactDigest } from '../subject.js';
import { checkBreakGlass, type BreakGlassContext } from './check.js';
import type { BreakGlassRefusal, BreakGlassRule } from './types.js';

export type BreakGlassResult = ReturnType<typeof checkBreakGlass>;

/** The break-glass step: the requests presented with a decision, checked against policy data. */
export function checkPresented(
  items: Array<{ source: string; bytes: Buffer }> | undefined,
  subjects: ArtifactDigest[],
  environment: string,
  ctx: Omit<BreakGlassContext, 'subjects' | 'environment'>,
): BreakGlassResult {
  if (!items?.length) return { accepted: undefined, refused: [] };
  return checkBreakGlass(items, { ...ctx, subjects, environment });
}

/**
 * A single-use request (reuse: single) already used by a recorded override is refused. The
 * caller holds the lock that also records the decision, so two decisions cannot both pass (and
 * the ledger refuses the second under its write lock, for other processes). A request reusable
 * until it expires is not refused here.
 */
export async function singleUse(
  consumed: (requestId: string) => Promise<boolean>,
  bg: BreakGlassResult,
): Promise<BreakGlassResult> {
  if (!bg.accepted || bg.accepted.reuse === 'until_expiry') return bg;
  if (!(await consumed(bg.accepted.requestId))) return bg;
  const replay = replayRefusal(bg.accepted.requestId, 'was already used');
  return { accepted: undefined, refused: [...bg.refused, replay] };
}

export function replayRefusal(requestId: string, why: string): BreakGlassRefusal {
  return {
    requestId,
    source: 'ledger',
    code: 'BREAK_GLASS_REPLAYED',
    message: `request ${requestId} ${why}`,
  };
}

/** data.gate.config.break_glass.environments: who may break glass where. */
export function breakGlassRulesOf(data: unknown): Record<string, BreakGlassRule> | undefined {
  const envs = (
    data as { gate?: { config?: { break_glass?: { environments?: unknown } } } } | undefined
  )?.gate?.config?.break_glass?.environments;
  return envs && typeof envs === 'object' ? (envs as Record<string, BreakGlassRule>) : undefined;
}
