import { loadConfig } from '../../config.js';
import { GateError } from '../../errors.js';
import { createGate } from '../../gate.js';
import { EXIT, type CommandIO, reportError } from '../io.js';

export interface BreakGlassRevokeOptions {
  config?: string;
  reason?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * `gate break-glass revoke ID`: ends a break-glass request stored in the ledger before it
 * expires. The revocation is a record of the ledger's chain; no override uses the request after
 * it (the ledger refuses one under its write lock), also a request only ever presented as bundles
 * (never posted). Exit 0 revoked, 1 refused (already revoked), 2 could not run.
 */
export async function breakGlassRevokeCommand(
  requestId: string,
  opts: BreakGlassRevokeOptions,
  io: CommandIO,
  now = () => new Date(),
): Promise<number> {
  try {
    if (!REQUEST_ID.test(requestId))
      throw new GateError(
        'USAGE_ERROR',
        `${JSON.stringify(requestId.slice(0, 80))} is not a break-glass request id`,
      );
    const config = loadConfig(opts.config, { cwd: io.cwd, env: io.env });
    // the gate's own ledger, as gate serve and gate check open it (a thin adapter over the gate)
    const gate = await createGate(config, { now });
    try {
      if (!gate.breakGlass)
        throw new GateError('LEDGER_UNAVAILABLE', 'this gate stores no break-glass requests');
      const result = await gate.breakGlass.revoke(requestId, 'cli', opts.reason);
      if (!result.ok) {
        io.stderr(`gate: ${result.refusal.code}: ${result.refusal.message}\n`);
        return EXIT.failed;
      }
      io.stdout(
        `revoked break-glass request ${requestId} (record ${result.recordId})${
          result.stored
            ? ''
            : ': it was never posted to the server; its bundles are refused from now on'
        }\n`,
      );
      return EXIT.ok;
    } finally {
      await gate.close();
    }
  } catch (err) {
    reportError(err, io);
    return EXIT.error;
  }
}
