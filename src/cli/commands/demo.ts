import { readdirSync } from 'node:fs';
import path from 'node:path';
import { GateError } from '../../errors.js';
import { isPlainObject, parseJSON, readBoundedFile } from '../../util/input.js';
import { packagePath } from '../../util/paths.js';
import { parseDigest } from '../../subject.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import {
  verifyAttestation,
  compileIdentityRules,
  loadTrustedRoot,
  type IdentityRule,
  type VerifiedAttestation,
} from '../../api/verify.js';

interface DemoConfig {
  description: string;
  subject: string;
  identities: IdentityRule[];
  attestations: string;
}

/**
 * `gate demo`: verifies the example attestations shipped in examples/ against the bundled
 * public-good trusted root, offline, and prints each verified statement.
 */
export function demoCommand(io: CommandIO, dir = packagePath('examples')): number {
  try {
    const config = parseJSON(
      readBoundedFile(path.join(dir, 'demo.json')),
      'demo.json',
    ) as DemoConfig;
    if (!isPlainObject(config))
      throw new GateError('INPUT_UNREADABLE', 'demo.json must be a json object');
    const trust = loadTrustedRoot();
    const subject = { digest: parseDigest(config.subject) };
    const identities = compileIdentityRules(config.identities);
    const folder = path.join(dir, config.attestations);
    io.stdout(
      `${config.description}\n\nsubject ${config.subject.slice(0, 23)}...\ntrusted root: ${trust.source}\n\n`,
    );
    let failed = 0;
    for (const name of readdirSync(folder)
      .filter((f) => f.endsWith('.sigstore.json'))
      .sort()) {
      try {
        const bytes = readBoundedFile(path.join(folder, name));
        io.stdout(render(name, verifyAttestation(bytes, { trust, subject, identities })));
      } catch (err) {
        failed++;
        io.stdout(`REJECTED ${name}\n`);
        reportError(err, io);
      }
    }
    return failed === 0 ? EXIT.ok : EXIT.failed;
  } catch (err) {
    return reportError(err, io);
  }
}

function render(name: string, a: VerifiedAttestation): string {
  const log = a.logEntries[0];
  return [
    `VERIFIED ${name}`,
    `  bundle        ${a.mediaType} (sha256 ${a.bundleDigest.slice(0, 16)}...)`,
    `  signer        ${a.signer.identity} via ${a.signer.issuer}`,
    `  log entry     ${log ? `${log.kind} ${log.version}, index ${log.logIndex}, integrated ${log.integratedTime}` : 'none'}`,
    `  statement     ${a.statement._type}`,
    `  predicateType ${a.predicateType}`,
    `  subjects      ${a.subjects.map((s) => s.name ?? '(unnamed)').join(', ')}`,
    `  predicate     ${JSON.stringify(a.predicate)}`,
    '',
    '',
  ].join('\n');
}
