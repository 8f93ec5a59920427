import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { GateError } from '../../errors.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import { parseSubject } from '../../subject.js';
import { breakGlassStatement } from '../../api/breakglass.js';

export interface BreakGlassRequestCommandOptions {
  subject: string[];
  env: string;
  justification: string;
  ticket: string;
  requester: string;
  expiresIn: string;
  out: string;
}

/**
 * Writes the unsigned statement and its predicate alone; the statement file's bytes are what
 * `--sign` signs and what `gate break-glass approve` co-signs.
 */
export function writeRequest(o: BreakGlassRequestCommandOptions, cwd: string, now: Date) {
  const minutes = Number(o.expiresIn);
  if (!Number.isInteger(minutes))
    throw new GateError('USAGE_ERROR', '--expires-in takes whole minutes');
  const statement = breakGlassStatement({
    subjects: o.subject.map(parseSubject),
    environment: o.env,
    justification: o.justification,
    ticket: o.ticket,
    requester: o.requester,
    expiresInMinutes: minutes,
    now,
  });
  const out = path.resolve(cwd, o.out);
  const predicateFile = out.replace(/(\.json)?$/, '.predicate.json');
  const payload = Buffer.from(`${JSON.stringify(statement, null, 2)}\n`);
  try {
    writeFileSync(out, payload);
    writeFileSync(predicateFile, `${JSON.stringify(statement.predicate, null, 2)}\n`);
  } catch (err) {
    throw new GateError('INPUT_UNREADABLE', `cannot write ${out}`, { cause: err });
  }
  return { statement, out, predicateFile, payload };
}

/**
 * `gate break-glass request`: writes the unsigned statement (and its predicate alone, which is
 * what `cosign attest-blob --predicate` takes) for the requester to sign.
 */
export function breakGlassRequestCommand(
  o: BreakGlassRequestCommandOptions,
  io: CommandIO,
  now = new Date(),
): number {
  try {
    const { statement, out } = writeRequest(o, io.cwd, now);
    io.stdout(
      [
        `wrote ${out} (request ${statement.predicate.requestId}, expires ${statement.predicate.expiresAt})`,
        'sign it with cosign, or have gate sign a new one: this command with --sign (keyless, or --key FILE)',
        `  cosign attest-blob --yes --statement ${out} --bundle break-glass.sigstore.json`,
        `co-signers sign the same statement: gate break-glass approve ${out}`,
        'pass every bundle to `gate check` with its own --break-glass.',
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  } catch (err) {
    reportError(err, io);
    return EXIT.error;
  }
}
