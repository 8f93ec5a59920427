import { readFileSync } from 'node:fs';
import { appendLinesDurably } from '../util/append.js';
import type { Decision } from '../decision.js';
import { GateError } from '../errors.js';
import { verifyJsonl } from './jsonl-verify.js';
import type { Ledger, VerifiableLedger } from './ledger.js';

/** The JSON Lines ledger: written by the gate, verified (as far as it can be) by auditors. */
export type JsonlLedger = Ledger & VerifiableLedger;

/**
 * A JSON Lines ledger: one record per decision, appended and fsynced before the decision is
 * returned. The hash-chained SQLite/PostgreSQL ledger replaces it (issue 5); jsonl-reader.ts
 * reads it back.
 */
export function createJsonlLedger(file: string): JsonlLedger {
  const ledger: JsonlLedger = {
    async append(decision, input) {
      // single use, by the records themselves (one process: the gate's lock serialises this
      // check and the write; this plain file has no lock between processes)
      const requestId =
        decision.outcome === 'override' && decision.override?.reuse !== 'until_expiry'
          ? decision.override?.requestId
          : undefined;
      if (requestId !== undefined && (await ledger.consumed(requestId)))
        throw new GateError(
          'BREAK_GLASS_REPLAYED',
          `break-glass request ${requestId} was already used (${file})`,
        );
      try {
        appendLinesDurably(file, [{ decision, input }]);
      } catch (err) {
        throw new GateError(
          'LEDGER_UNAVAILABLE',
          `cannot record the decision in ${file}: ${(err as Error).message.toLowerCase()}`,
          {
            cause: err,
          },
        );
      }
    },
    async consumed(requestId) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw new GateError('LEDGER_UNAVAILABLE', `cannot read ${file}`, { cause: err });
      }
      const needle = JSON.stringify(requestId);
      return text.split('\n').some((line) => line.includes(needle) && usedBy(line, requestId));
    },
    // no chain and no checkpoints: nothing is signed, so a key has nothing to check
    verify: (_publicKey, opts) => verifyJsonl(file, opts),
    async close() {},
  };
  return ledger;
}

function usedBy(line: string, requestId: string): boolean {
  try {
    const record = JSON.parse(line) as { decision?: Decision };
    return (
      record.decision?.outcome === 'override' && record.decision.override?.requestId === requestId
    );
  } catch {
    // a torn last line (a crash mid-write) holds no acknowledged decision
    return false;
  }
}
