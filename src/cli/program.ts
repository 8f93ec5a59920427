import { Command, CommanderError, Option } from 'commander';
import { demoCommand } from './commands/demo.js';
import { evaluateCommand } from './commands/evaluate.js';
import { trustRefreshCommand } from './commands/trust.js';
import { verifyBundleCommand } from './commands/verify-bundle.js';
import { EXIT, type CommandIO } from './io.js';
import { VERSION } from '../version.js';

/**
 * Builds the `gate` command line. Commands return an exit status; only main.ts exits, so the
 * whole CLI runs in-process in tests.
 */
export function buildProgram(io: CommandIO, setExit: (code: number) => void): Command {
  const program = new Command('gate')
    .description('policy-as-code attestation gate')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError(false);

  program
    .command('verify-bundle')
    .description('verify a sigstore bundle for an artifact (sigstore-conformance cli protocol)')
    .requiredOption('--bundle <file>', 'the sigstore bundle')
    .option('--certificate-identity <identity>', "the signer's exact certificate san")
    .option(
      '--certificate-identity-regexp <regexp>',
      'a regular expression the san must match (anchored)',
    )
    .option('--certificate-oidc-issuer <url>', "the signer's exact oidc issuer")
    .option('--key <pem>', 'verify with this public key instead of an identity')
    .option('--trusted-root <file>', 'trusted_root.json (default: the bundled public-good root)')
    .option('--staging', 'use the sigstore staging instance')
    .option('--json', 'print the verified result as json')
    .argument('<file-or-digest>', 'the artifact, or sha256:<hex>')
    .action((target: string, opts) => setExit(verifyBundleCommand(target, opts, io)));

  program
    .command('evaluate')
    .description(
      'evaluate a policy input with the compiled policy (exit 0 allow, 1 deny, 2 could not decide)',
    )
    .requiredOption('--input <file>', 'the policy input (schemas/policy-input.schema.json)')
    .option(
      '--policy <path>',
      'rego directory, opa wasm bundle (.tar.gz) or policy.wasm (default: the built-in library)',
    )
    .option('--data <file>', 'policy data (json) replacing the bundle data')
    .addOption(
      new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
    )
    .action(async (opts) => setExit(await evaluateCommand(opts, io)));

  program
    .command('trust')
    .description('manage trust material')
    .command('refresh')
    .description('fetch the current trusted root through tuf and write it for offline use')
    .requiredOption('--out <file>', 'where to write trusted_root.json')
    .option('--mirror-url <url>', 'the tuf repository (default: sigstore public-good)')
    .option('--tuf-root <file>', 'a trusted tuf root.json for the mirror')
    .option('--cache <dir>', 'tuf metadata cache (default: .gate/tuf-cache)')
    .action(async (opts) => setExit(await trustRefreshCommand(opts, io)));

  program
    .command('demo')
    .description('verify the bundled example attestations and print the verified statements')
    .action(() => setExit(demoCommand(io)));

  return program;
}

export async function run(argv: string[], io: CommandIO): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every usage mistake is "could not run"
      return err.exitCode === 0 ? EXIT.ok : EXIT.error;
    }
    throw err;
  }
  return code;
}
