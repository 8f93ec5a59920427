import { existsSync } from 'node:fs';
import path from 'node:path';
import { requestToApprove, sameSigner, signPayload } from '../../api/breakglass-sign.js';
import { GateError } from '../../errors.js';
import { readBoundedFile } from '../../util/input.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import {
  servicesOf,
  signingIdentity,
  witnessed,
  writeBundle,
  type SigningCommandOptions,
} from './break-glass-sign.js';

/**
 * `gate break-glass approve FILE`: a co-signer signs the very bytes the requester signed (the
 * statement file as `request` wrote it, or the payload of the requester's bundle), so the gate
 * sees one request with two signers. It says what is being approved first, refuses an expired
 * request, and refuses the requester approving their own request (the gate would not count it).
 */
export async function breakGlassApproveCommand(
  file: string,
  o: SigningCommandOptions,
  io: CommandIO,
  now = new Date(),
): Promise<number> {
  try {
    const source = path.resolve(io.cwd, file);
    const req = requestToApprove(readBoundedFile(source, undefined, 'request'), file);
    const p = req.predicate;
    if (!(Date.parse(p.expiresAt) > now.getTime()))
      throw new GateError(
        'BREAK_GLASS_EXPIRED',
        `request ${p.requestId} expired at ${p.expiresAt}: the requester asks again`,
      );
    io.stdout(
      [
        `approving request ${p.requestId} for ${p.environment}, requested by ${p.requester}, expires ${p.expiresAt}`,
        `  ticket: ${p.ticket}`,
        `  justification: ${p.justification}`,
        ...req.subjects.map((s) => `  subject: ${s}`),
        '',
      ].join('\n'),
    );
    const identity = signingIdentity(o, io);
    const bundleFile = o.bundle ? path.resolve(io.cwd, o.bundle) : freeApprovalName(source);
    const signed = await signPayload(req.payload, {
      identity,
      services: servicesOf(o),
      checkSigner: (signer) => {
        if (sameSigner(signer, p.requester))
          throw new GateError(
            'SIGN_SIGNER_MISMATCH',
            `you sign as ${signer}, the requester: an approval must come from someone else`,
          );
      },
    });
    writeBundle(bundleFile, signed, o.bundle ? 'w' : 'wx');
    io.stdout(`approved as ${signed.signer}: ${bundleFile} (${witnessed(signed)})\n`);
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io);
  }
}

/** request.json or request.sigstore.json -> request.approval.sigstore.json, -2, -3 ... if taken */
function freeApprovalName(source: string): string {
  const base = source.replace(/(\.sigstore)?\.json$/, '');
  for (let n = 1; ; n++) {
    const candidate = `${base}.approval${n > 1 ? `-${n}` : ''}.sigstore.json`;
    if (!existsSync(candidate)) return candidate;
  }
}
