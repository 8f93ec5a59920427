import { GateError } from '../errors.js';
import { jsonlLines } from './jsonl-reader.js';
import type { LedgerVerifyOptions } from './ledger.js';
import { failed, type ChainVerification, type LedgerFailureCode } from './verify-chain.js';

/**
 * What can be checked of a JSON Lines ledger, which has no hash chain: every line is a record
 * (a line that does not parse is a torn write, which the next append leaves behind, so it is
 * skipped as the reader skips it), no decision is recorded twice, no break-glass request is used
 * by two overrides, and the ledger is as long as the auditor expects. `seq` in a failure is the
 * line number. The answer says `chained: false`: edits and removals cannot be seen.
 */
export async function verifyJsonl(
  file: string,
  opts: LedgerVerifyOptions = {},
): Promise<ChainVerification> {
  if (opts.external?.length)
    throw new GateError(
      'USAGE_ERROR',
      `the json lines ledger ${file} has no hash chain: checkpoints cannot be checked against it`,
    );
  const ids = new Map<string, number>();
  const requests = new Map<string, number>();
  let n = 0;
  for await (const l of jsonlLines(file)) {
    const broken = (code: LedgerFailureCode, reason: string, id?: string) => ({
      ...failed(n, { seq: l.line, ...(id ? { id } : {}), code, reason }),
      chained: false as const,
    });
    if ('torn' in l) continue;
    if ('foreign' in l)
      return broken('LEDGER_CHAIN_BROKEN', `line ${l.line} is json but not a decision record`);
    const { id, outcome, override } = l.record.decision;
    const twice = ids.get(id);
    if (twice !== undefined)
      return broken('LEDGER_CHAIN_BROKEN', `decision ${id} is recorded twice (line ${twice})`, id);
    ids.set(id, l.line);
    const requestId = outcome === 'override' ? override?.requestId : undefined;
    const used = requestId === undefined ? undefined : requests.get(requestId);
    // a request reusable until it expires may override again; a single-use one only first
    if (used !== undefined && override?.reuse !== 'until_expiry')
      return broken(
        'BREAK_GLASS_REPLAYED',
        `break-glass request ${requestId} overrides twice (line ${used})`,
        id,
      );
    if (requestId !== undefined && used === undefined) requests.set(requestId, l.line);
    n++;
  }
  if (opts.expectSize !== undefined && n < opts.expectSize)
    return {
      ...failed(n, {
        seq: n + 1,
        code: 'LEDGER_TRUNCATED',
        reason: `expected at least ${opts.expectSize} records, the ledger has ${n} (records were removed)`,
      }),
      chained: false,
    };
  return { ok: true, records: n, checkpoints: 0, chained: false };
}
