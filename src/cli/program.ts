import { Command, CommanderError, Option } from 'commander';
import { EXIT, type CommandIO } from './io.js';
import { VERSION } from '../util/version.js';

/**
 * Each command's module, imported when the command runs: `gate --help` or `gate check` loads
 * commander and the one command, not the server, the ledgers, the policy engine and the verifier
 * of every other command (issue 11: the CLI's cold start).
 */
const commands = {
  audit: () => import('./commands/audit.js'),
  breakGlass: () => import('./commands/break-glass.js'),
  breakGlassSign: () => import('./commands/break-glass-sign.js'),
  breakGlassApprove: () => import('./commands/break-glass-approve.js'),
  breakGlassRevoke: () => import('./commands/break-glass-revoke.js'),
  check: () => import('./commands/check.js'),
  demo: () => import('./commands/demo.js'),
  evaluate: () => import('./commands/evaluate.js'),
  recheck: () => import('./commands/recheck.js'),
  serve: () => import('./commands/serve.js'),
  trust: () => import('./commands/trust.js'),
  verifyBundle: () => import('./commands/verify-bundle.js'),
};

/** The options of `signing` below and --bundle: `request` takes them only with --sign. */
const SIGNING_OPTIONS = new Set([
  'key',
  'fulcioUrl',
  'rekorUrl',
  'tsaUrl',
  'oidcIssuer',
  'oidcClientId',
  'browser',
  'bundle',
]);

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
    .option(
      '--trusted-root <file>',
      'a trusted root json, or json lines of several (gh attestation trusted-root); default: public-good',
    )
    .option('--staging', 'use the sigstore staging instance')
    .option('--json', 'print the verified result as json')
    .argument('<file-or-digest>', 'the artifact, or sha256:<hex>')
    .action(async (target: string, opts) =>
      setExit((await commands.verifyBundle()).verifyBundleCommand(target, opts, io)),
    );

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command('check')
    .description(
      'decide whether artifacts may go to an environment (exit 0 allow, 1 deny, 2 could not decide)',
    )
    .option(
      '--subject <subject>',
      'sha256:HEX, or NAME[@VERSION]=sha256:HEX (repeat for a release set)',
      collect,
    )
    .option(
      '--image <ref>',
      'a container image, REGISTRY/REPO[:TAG][@sha256:HEX]: a tag is resolved to its digest once; attestations are searched in its repository (repeatable)',
      collect,
    )
    .requiredOption('--env <name>', 'the environment: dev, staging, production, hotfix, ...')
    .option('--config <file>', 'gate.yaml (schemas/gate-config.schema.json)')
    .option('--bundle <file>', 'a bundle, .jsonl or dsse envelope file (repeatable)', collect)
    .option('--bundle-dir <dir>', 'a folder of bundles (repeatable)', collect)
    .option('--rekor-url <url>', 'a rekor v1 log to search by digest')
    .option('--store-url <url>', 'an attestation store speaking the github attestations api')
    .option(
      '--trusted-root <file>',
      'a trusted root json, or json lines of several (gh attestation trusted-root); default: public-good',
    )
    .option(
      '--policy <path>',
      'rego directory, opa wasm bundle or policy.wasm (default: the built-in library)',
    )
    .option('--break-glass <file>', 'a signed break-glass request bundle (repeatable)', collect)
    .option(
      '--break-glass-id <id>',
      'the id of a break-glass request stored in the ledger (POST /v1/break-glass)',
    )
    .option(
      '--context <file>',
      'unsigned context as json, information for policies (it never relaxes a rule)',
    )
    .option('--dry-run', 'record a would-deny and allow')
    .option(
      '--at <time>',
      'decide as of this rfc 3339 time instead of now (recorded as such; for auditors)',
    )
    .option('--vsa <file>', 'on an enforced allow, write a signed slsa verification summary here')
    .option(
      '--summary <file>',
      'append the decision as markdown (for example $GITHUB_STEP_SUMMARY)',
    )
    .addOption(
      new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
    )
    .action(async (opts) => setExit(await (await commands.check()).checkCommand(opts, io)));

  // Signing through sigstore-js, for `request --sign` and `approve`: keyless or with a key.
  const signing = (c: Command) =>
    c
      .option('--key <pem>', 'sign with this pem private key (default: keyless, through fulcio)')
      .option('--fulcio-url <url>', 'fulcio (default: https://fulcio.sigstore.dev)')
      .option('--rekor-url <url>', 'rekor v1 log (default: https://rekor.sigstore.dev)')
      .option('--tsa-url <url>', 'also timestamp with this rfc 3161 timestamp authority')
      .option('--oidc-issuer <url>', 'browser sign-in issuer (default: oauth2.sigstore.dev/auth)')
      .option('--oidc-client-id <id>', 'browser sign-in client id (default: sigstore)')
      .option('--browser', 'sign in through the browser when no token is in the environment');
  const breakGlass = program.command('break-glass').description('emergency overrides');
  const request = breakGlass
    .command('request')
    .description(
      'write a break-glass statement for the requester to sign, or sign it too with --sign',
    )
    .requiredOption(
      '--subject <subject>',
      'sha256:HEX or NAME[@VERSION]=sha256:HEX (repeatable)',
      collect,
    )
    .requiredOption('--env <name>', 'the environment the override is for')
    .requiredOption('--justification <text>', 'why the gate must be bypassed')
    .requiredOption('--ticket <id>', 'the incident or change ticket')
    .requiredOption('--requester <identity>', 'your signing identity (certificate san, or key id)')
    .option('--expires-in <minutes>', 'minutes until the request expires', '60')
    .requiredOption('--out <file>', 'where to write the statement')
    .option('--sign', 'sign it now (sigstore): keyless, or with --key')
    .option('--bundle <file>', 'with --sign, write the bundle here (default: OUT.sigstore.json)');
  signing(request).action(async (opts) =>
    setExit(
      // signing flags without --sign are refused there, not ignored
      opts.sign || Object.keys(opts).some((k) => SIGNING_OPTIONS.has(k))
        ? await (await commands.breakGlassSign()).breakGlassSignedRequestCommand(opts, io)
        : (await commands.breakGlass()).breakGlassRequestCommand(opts, io),
    ),
  );
  signing(breakGlass.command('approve'))
    .description("co-sign a break-glass request: the statement file or the requester's bundle")
    .argument('<file>', 'request.json as written by request, or the request bundle')
    .option('--bundle <file>', 'write the approval here (default: FILE.approval.sigstore.json)')
    .action(async (file: string, opts) =>
      setExit(await (await commands.breakGlassApprove()).breakGlassApproveCommand(file, opts, io)),
    );

  breakGlass
    .command('revoke')
    .description('end a break-glass request stored in the ledger before it expires (recorded)')
    .argument('<id>', 'the request id')
    .option('--config <file>', 'gate.yaml naming the ledger (default: .gate/ledger.db)')
    .option('--reason <text>', 'why it is revoked (recorded)')
    .action(async (id: string, opts) =>
      setExit(await (await commands.breakGlassRevoke()).breakGlassRevokeCommand(id, opts, io)),
    );

  const audit = program.command('audit').description('query and verify the audit ledger');
  const ledgerOpts = (c: Command) =>
    c
      .option('--config <file>', 'gate.yaml naming the ledger (default: .gate/ledger.db)')
      .addOption(
        new Option('--format <format>', 'output format')
          .choices(['table', 'json', 'jsonl'])
          .default('table'),
      );
  ledgerOpts(
    audit
      .command('query')
      .description(
        'decisions by subject, environment, outcome, time, requester or rule, newest first',
      ),
  )
    .option('--subject <digest>', 'sha256:HEX')
    .option('--env <name>', 'environment')
    .addOption(
      new Option('--outcome <outcome>', 'outcome').choices(['allow', 'deny', 'override', 'error']),
    )
    .option('--from <time>', 'rfc 3339, inclusive')
    .option('--to <time>', 'rfc 3339, exclusive')
    .option('--requester <identity>', 'break-glass requester')
    .option('--rule <id>', 'a violated or overridden rule')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(async (opts) => setExit(await (await commands.audit()).auditQueryCommand(opts, io)));
  ledgerOpts(
    audit
      .command('show')
      .description('one decision in full, with its input')
      .argument('<id>', 'decision id'),
  ).action(async (id: string, opts) =>
    setExit(await (await commands.audit()).auditShowCommand(id, opts, io)),
  );
  ledgerOpts(
    audit
      .command('verify')
      .description('check the hash chain and the signed checkpoints (exit 1 on tampering)'),
  )
    .option('--public-key <pem>', 'the ledger key that signs checkpoints')
    .option('--checkpoint <file>', 'signed checkpoints held outside the ledger (checkpoint log)')
    .option('--expect-size <n>', 'the ledger must hold at least this many records')
    .action(async (opts) => setExit(await (await commands.audit()).auditVerifyCommand(opts, io)));
  ledgerOpts(
    audit
      .command('replay')
      .description(
        'evaluate a recorded input again with the recorded policy, and another (exit 1 if one differs)',
      )
      .argument('<id>', 'decision id'),
  )
    .option('--policy <path>', 'also replay with this policy (the current one, say)')
    .action(async (id: string, opts) =>
      setExit(await (await commands.audit()).auditReplayCommand(id, opts, io)),
    );
  ledgerOpts(
    audit
      .command('export')
      .description('every record and checkpoint as json lines, in chain order'),
  )
    .option('--out <file>', 'write here instead of stdout')
    .action(async (opts) => setExit(await (await commands.audit()).auditExportCommand(opts, io)));

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
    .action(async (opts) => setExit(await (await commands.evaluate()).evaluateCommand(opts, io)));

  program
    .command('trust')
    .description('manage trust material')
    .command('refresh')
    .description('fetch the current trusted root through tuf and write it for offline use')
    .requiredOption('--out <file>', 'where to write trusted_root.json')
    .option('--mirror-url <url>', 'the tuf repository (default: sigstore public-good)')
    .option('--tuf-root <file>', 'a trusted tuf root.json for the mirror')
    .option('--cache <dir>', 'tuf metadata cache (default: .gate/tuf-cache)')
    .action(async (opts) => setExit(await (await commands.trust()).trustRefreshCommand(opts, io)));

  program
    .command('serve')
    .description(
      'serve decisions over http (tokens: GATE_TOKEN_BREAK_GLASS, GATE_TOKEN_AUDIT, GATE_TOKEN_DECISIONS)',
    )
    .option('--config <file>', 'gate.yaml (schemas/gate-config.schema.json)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '8080')
    .option('--env-default <name>', 'the admission webhook environment when its url names none')
    .option('--tls-cert <file>', 'serve https with this PEM certificate chain (reloaded on change)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert (reloaded on change)')
    .option('--recheck-every <duration>', 're-decide what was allowed, this often (like 1h)')
    .option('--recheck-since <duration>', 'with --recheck-every: decisions this recent', '7d')
    .option('--recheck-env <name>', 'with --recheck-every: only this environment (default: all)')
    .action(async (opts) => setExit(await (await commands.serve()).serveCommand(opts, io)));

  program
    .command('recheck')
    .description(
      're-decide what was allowed or overridden in an environment (exit 1 on drift, 2 if undecided)',
    )
    .requiredOption('--env <name>', 'environment')
    .option('--since <duration>', 'decisions made at most this long ago (s, m, h, d)', '7d')
    .option('--config <file>', 'gate.yaml (schemas/gate-config.schema.json)')
    .addOption(new Option('--format <format>', 'output').choices(['text', 'json']).default('text'))
    .action(async (opts) => setExit(await (await commands.recheck()).recheckCommand(opts, io)));

  program
    .command('demo')
    .description('verify the bundled example attestations and print the verified statements')
    .action(async () => setExit((await commands.demo()).demoCommand(io)));

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
