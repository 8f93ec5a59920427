/**
 * `make demo`: the gate's whole flow, offline, on the embedded default policy.
 *
 * Local throwaway Sigstore services (test/support) certify the signers and log the signatures;
 * evidence for an example artifact is minted with them; then the real CLI runs in-process, exactly
 * as a user would type it: allow for dev, deny for production, an emergency override signed by
 * on-call and co-signed by a lead, its replay refused, and the audit ledger. Every step's outcome
 * is checked: if one is not what the demo promises, it fails instead of showing something else.
 *
 * Run from the repository root after `make build policies`: npx tsx test/demo/run.ts
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/program.js';
import { loadConfig } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { createServer } from '../../src/server/app.js';
import type { CommandIO } from '../../src/cli/io.js';
import { mintDSSEBundle, type KeylessIdentity } from '../support/mint.js';
import { pushBundleArtifact, pushImage, pushReferrersTag } from '../support/registry-push.js';
import { startRegistry } from '../support/registry-server.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import {
  ARTIFACT_NAME,
  CI_WORKFLOW,
  LEAD,
  ONCALL,
  RELEASE_WORKFLOW,
  SCAN_WORKFLOW,
  exampleArtifact,
  provenance,
  sha256,
  testResult,
  vulnerabilityScan,
} from './evidence.js';

const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DEMO = '.gate/demo';
const LEDGER = '.gate/ledger.db';
const CONFIG = `${DEMO}/gate.yaml`;
const at = (p: string) => path.join(ROOT, p);

class DemoFailure extends Error {}

const out = (text = '') => process.stdout.write(`${text}\n`);
const heading = (text: string) => out(`\n== ${text}`);

/** Shows a command line as a user would type it; $SUBJECT stands for the long subject. */
function shown(argv: string[], subject: string): string {
  const words = argv.map((a) =>
    a === subject ? '$SUBJECT' : /[^\w@%+=:,./-]/.test(a) ? `"${a}"` : a,
  );
  return `$ gate ${words.join(' ')}`;
}

/** Runs the CLI in-process, prints what it prints, and checks the exit status and a marker. */
async function gate(
  argv: string[],
  subject: string,
  expect: { exit: number; says: string[]; what: string; condensed?: RegExp },
): Promise<string> {
  out(shown(argv, subject));
  let stdout = '';
  let stderr = '';
  const io: CommandIO = {
    cwd: ROOT,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  };
  const code = await run(argv, io);
  const { condensed } = expect;
  process.stdout.write(
    condensed
      ? `${stdout
          .split('\n')
          .filter((l) => condensed.test(l))
          .join('\n')}\n`
      : stdout,
  );
  process.stdout.write(stderr);
  out(`(exit ${code})`);
  const missing = expect.says.filter((s) => !`${stdout}${stderr}`.includes(s));
  if (code !== expect.exit || missing.length > 0) {
    throw new DemoFailure(
      `expected ${expect.what} (exit ${expect.exit}${expect.says.length ? `, saying ${expect.says.join(', ')}` : ''}), got exit ${code}${missing.length ? ` without ${missing.join(', ')}` : ''}`,
    );
  }
  return stdout;
}

async function sign(
  svc: LocalSigstore,
  file: string,
  statement: object,
  identity: KeylessIdentity,
): Promise<void> {
  const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless', identity });
  writeFileSync(at(file), `${JSON.stringify(m.bundle)}\n`);
}

function freshWorkspace(): void {
  rmSync(at(DEMO), { recursive: true, force: true });
  mkdirSync(at(`${DEMO}/evidence`), { recursive: true });
  if (existsSync(at(LEDGER))) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    const aside = `${LEDGER}.${stamp}.bak`;
    // the database with its write-ahead log and shared-memory files, if a crash left them
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(at(LEDGER + suffix))) renameSync(at(LEDGER + suffix), at(aside + suffix));
    }
    out(`(moved the previous ledger aside to ${aside})`);
  }
  // The key that signs the ledger's head (checkpoints), so a copy can be checked without the gate.
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(at(`${DEMO}/ledger.key`), privateKey.export({ format: 'pem', type: 'pkcs8' }));
}

function gateYaml(): string {
  const id = (who: KeylessIdentity) => `{ san: ${who.san}, issuer: '${who.issuer}' }`;
  return `# written by make demo (test/demo/run.ts); paths are relative to this file
# The local throwaway Sigstore services' root. Without trustedRoot the gate uses the Sigstore
# public-good root it ships with.
trustedRoot: trusted_root.json
sources:
  bundles: [evidence]
ledger:
  path: ../ledger.db
  checkpointKey: ledger.key
  checkpointEvery: { records: 2 }
# The built-in policy library with its default data (policies/data.json); this is merged over it.
policy:
  config:
    break_glass:
      environments:
        production:
          requesters: [${id(ONCALL)}]
          approvers: [${id(LEAD)}]
          approvals: 1
          max_expiry_minutes: 120
          reuse: single
        staging: # reuse: until_expiry, the default: every Pod of a Deployment
          requesters: [${id(ONCALL)}]
          approvers: [${id(LEAD)}]
          approvals: 1
          max_expiry_minutes: 120
`;
}

/**
 * A real registry (go-containerregistry's `crane registry serve`, built by make into .tools/bin)
 * on 127.0.0.1: the image is pushed, then each attestation as a Sigstore bundle artifact
 * referring to it, listed under the referrers tag schema, the layout GitHub's push-to-registry
 * and cosign v3 write where a registry has no referrers API. `gate check --image` resolves the
 * tag, searches the image's repository and decides.
 */
async function imageStep(svc: LocalSigstore): Promise<void> {
  const registry = await startRegistry();
  try {
    const repo = 'acme/api';
    const image = await pushImage(registry.url, repo, '1.4.2');
    const hex = image.digest.slice('sha256:'.length);
    const now = new Date();
    const statements: Array<[object, KeylessIdentity]> = [
      [provenance(hex, now), RELEASE_WORKFLOW],
      [testResult(hex), CI_WORKFLOW],
      [vulnerabilityScan(hex, now), SCAN_WORKFLOW],
    ];
    const referrers = [];
    for (const [statement, identity] of statements) {
      const m = await mintDSSEBundle(svc, {
        statement,
        version: '0.3',
        signer: 'keyless',
        identity,
      });
      const bytes = Buffer.from(JSON.stringify(m.bundle));
      referrers.push(await pushBundleArtifact(registry.url, repo, image, bytes));
    }
    await pushReferrersTag(registry.url, repo, image.digest, referrers);
    const ref = `${registry.host}/${repo}:1.4.2`;
    out(`registry ${registry.url} (crane registry serve); pushed ${ref} = ${image.digest}`);
    out(
      `and ${referrers.length} sigstore bundle artifacts referring to it (tag sha256-${hex.slice(0, 12)}...)`,
    );
    await gate(['check', '--config', CONFIG, '--image', ref, '--env', 'dev'], '', {
      exit: 0,
      says: ['ALLOW:', `${ref} sha256:${hex}`, '#referrers-tag:'],
      what: 'an allow on the registry evidence',
    });
    await admissionStep(svc, `${registry.host}/${repo}@${image.digest}`, hex);
  } finally {
    await registry.close();
  }
}

/**
 * Break glass in Kubernetes admission: the server `gate serve` runs (built in-process here, on
 * 127.0.0.1) stores a signed, co-signed request posted to /v1/break-glass; a Deployment whose pod
 * template is annotated with its id is admitted by override, and so are its ReplicaSet and Pods
 * (reuse: until_expiry); a Pod running another image under the same annotation is refused.
 */
async function admissionStep(svc: LocalSigstore, image: string, hex: string): Promise<void> {
  heading('5b. Break glass in Kubernetes admission: staging wants a review nobody gave');
  const request = `${DEMO}/staging-break-glass.json`;
  await gate(
    [
      ...['break-glass', 'request', '--subject', `sha256:${hex}`, '--env', 'staging'],
      ...['--justification', 'the staging rollout blocks the payments fix; reviewed after'],
      ...['--ticket', 'INC-4712', '--requester', ONCALL.san, '--expires-in', '60'],
      ...['--out', request],
    ],
    '',
    { exit: 0, says: ['wrote'], what: 'a written request' },
  );
  const statement = JSON.parse(readFileSync(at(request), 'utf8')) as {
    predicate: { requestId: string };
  };
  const bundles = [];
  for (const who of [ONCALL, LEAD]) {
    const m = await mintDSSEBundle(svc, {
      statement,
      version: '0.3',
      signer: 'keyless',
      identity: who,
    });
    bundles.push(m.bundle);
  }
  out(`(signed as ${ONCALL.san}, co-signed as ${LEAD.san})`);
  const token = 'demo-on-call-token';
  const auditToken = 'demo-auditor-token';
  const config = loadConfig(CONFIG, { cwd: ROOT });
  const server = createServer({
    gate: await createGate(config),
    config,
    tokens: { breakGlass: [token], audit: [auditToken] },
  });
  try {
    const base = await server.listen({ host: '127.0.0.1', port: 0 });
    const post = async (url: string, body: object, bearer?: string) => {
      const res = await fetch(`${base}${url}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    out(`gate serve on ${base}; GATE_TOKEN_BREAK_GLASS=${token}`);
    out(`POST ${base}/v1/break-glass (bearer token) {"bundles": [on-call's, the lead's]}`);
    const posted = await post('/v1/break-glass', { bundles }, token);
    out(
      `${posted.status} ${JSON.stringify({ requestId: posted.body.requestId, expiresAt: posted.body.expiresAt })}`,
    );
    const id = statement.predicate.requestId;
    if (posted.status !== 201 || posted.body.requestId !== id)
      throw new DemoFailure(`expected the request stored (201), got ${posted.status}`);
    const annotations = { 'gate.dev/break-glass': id };
    const pod = { containers: [{ name: 'api', image }] };
    const review = (kind: string, name: string, object: object) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: `uid-${name}`,
        kind: { kind },
        operation: 'CREATE',
        namespace: 'payments',
        name,
        object,
      },
    });
    const template = { metadata: { annotations }, spec: pod };
    const objects: Array<[string, string, object, boolean]> = [
      ['Deployment', 'acme-api', { metadata: { name: 'acme-api' }, spec: { template } }, true],
      [
        'ReplicaSet',
        'acme-api-5c9d',
        { metadata: { name: 'acme-api-5c9d' }, spec: { template } },
        true,
      ],
      ...['x7k2p', 'm4q8z'].map((s): [string, string, object, boolean] => [
        'Pod',
        `acme-api-5c9d-${s}`,
        { metadata: { name: `acme-api-5c9d-${s}`, annotations }, spec: pod },
        true,
      ]),
      [
        'Pod',
        'stowaway',
        {
          metadata: { name: 'stowaway', annotations },
          spec: {
            containers: [{ name: 'x', image: `${image.split('@')[0]}@sha256:${'0'.repeat(64)}` }],
          },
        },
        false,
      ],
    ];
    out(
      `admission (POST ${base}/v1/admission/staging), each object annotated gate.dev/break-glass: ${id}`,
    );
    for (const [kind, name, object, admitted] of objects) {
      const { body } = await post('/v1/admission/staging?timeout=10s', review(kind, name, object));
      const r = body.response as {
        allowed: boolean;
        status?: { message: string };
        warnings?: string[];
      };
      // a denial's message lists the violations, then why the request did not override them
      const said = r.warnings?.[0] ?? r.status?.message ?? '';
      const why = said.includes('break-glass request')
        ? said.slice(said.indexOf('break-glass request'))
        : said;
      out(
        `  ${`${kind} ${name}`.padEnd(32)} ${r.allowed ? 'ADMITTED' : 'DENIED'}: ${why.slice(0, 160)}`,
      );
      if (r.allowed !== admitted || (!admitted && !why.includes('BREAK_GLASS_WRONG_SUBJECT')))
        throw new DemoFailure(`expected ${kind} ${name} ${admitted ? 'admitted' : 'denied'}`);
    }
    await webView(base, auditToken, id);
  } finally {
    await server.close();
  }
  await gate(['audit', 'verify', '--config', CONFIG], '', {
    exit: 0,
    says: ['ledger verified'],
    what: 'a verified chain, the stored request in it',
  });
}

/** The auditor's web view of the same server: signed in with the audit token, the request listed. */
async function webView(base: string, auditToken: string, requestId: string): Promise<void> {
  out(`web view at ${base}/ui/ (sign in with the audit token ${auditToken})`);
  const login = await fetch(`${base}/ui/login`, {
    method: 'POST',
    headers: { origin: base, 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${auditToken}`,
    redirect: 'manual',
  });
  const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';
  const page = await fetch(`${base}/ui/break-glass`, { headers: { cookie } });
  const html = await page.text();
  if (login.status !== 303 || page.status !== 200 || !html.includes(requestId))
    throw new DemoFailure(`expected the web view to list request ${requestId}`);
  out(`  ${base}/ui/break-glass lists request ${requestId} and the overrides that used it`);
}

async function main(): Promise<void> {
  const started = Date.now();
  out('gate demo: the whole flow, offline, with the built-in default policy');
  freshWorkspace();

  heading('1. Local Sigstore services');
  const svc = await startLocalSigstore();
  try {
    writeFileSync(at(`${DEMO}/trusted_root.json`), `${JSON.stringify(svc.trustedRoot, null, 2)}\n`);
    out(`Fulcio-like CA with CT log ${svc.fulcioURL}, Rekor v1 ${svc.rekorURL}, TSA ${svc.tsaURL}`);
    out('These are LOCAL THROWAWAY services that certify any identity they are asked to: they');
    out('exist only for this demo. Real use verifies against the Sigstore public-good instance');
    out(`(the default: no trustedRoot in gate.yaml). Their root: ${DEMO}/trusted_root.json`);

    heading('2. Evidence for an example artifact, signed keyless as CI workflows would');
    const artifact = exampleArtifact();
    const hex = sha256(artifact);
    writeFileSync(at(`${DEMO}/${ARTIFACT_NAME}`), artifact);
    const subject = `acme-api@1.4.2=sha256:${hex}`;
    const now = new Date();
    const evidence: Array<[string, object, KeylessIdentity, string]> = [
      ['provenance', provenance(hex, now), RELEASE_WORKFLOW, 'SLSA provenance v1'],
      ['tests', testResult(hex), CI_WORKFLOW, 'test-result v0.1, unit + integration PASSED'],
      ['vulns', vulnerabilityScan(hex, now), SCAN_WORKFLOW, 'vulns v0.2, one low finding'],
    ];
    out(`artifact ${DEMO}/${ARTIFACT_NAME}; in ${DEMO}/evidence/, signed by acme/api workflows:`);
    for (const [name, statement, identity, what] of evidence) {
      const file = `${name}.sigstore.json`;
      await sign(svc, `${DEMO}/evidence/${file}`, statement, identity);
      const signer = identity.san.replace(/^.*\/\.github\/workflows\/(.*)@.*$/, '$1');
      out(`  ${file.padEnd(26)} ${signer.padEnd(12)} ${what}`);
    }
    out(`SUBJECT=${subject}`);

    heading(`3. Configuration: ${CONFIG}`);
    writeFileSync(at(CONFIG), gateYaml());
    out(`trusted root, evidence folder, ledger ${LEDGER}, and break-glass for production:`);
    out(`on-call ${ONCALL.san} may request, ${LEAD.san} must co-sign, 120 min at most`);

    const check = (env: string, ...more: string[]) => [
      'check',
      '--config',
      CONFIG,
      '--subject',
      subject,
      '--env',
      env,
      ...more,
    ];

    heading('4a. Check for dev: trusted provenance, unit tests, a scan');
    await gate(check('dev'), subject, { exit: 0, says: ['ALLOW:'], what: 'an allow' });

    heading('4b. Check for production: stricter, and nobody reviewed or staged it');
    await gate(check('production'), subject, { exit: 1, says: ['DENY:'], what: 'a deny' });

    heading('4c. Break glass: request, sign as on-call, co-sign as the lead, check again');
    const request = `${DEMO}/break-glass.json`;
    await gate(
      [
        'break-glass',
        'request',
        '--subject',
        subject,
        '--env',
        'production',
        '--justification',
        'payments are down in production; this build carries the fix',
        '--ticket',
        'INC-4711',
        '--requester',
        ONCALL.san,
        '--expires-in',
        '60',
        '--out',
        request,
      ],
      subject,
      { exit: 0, says: ['wrote'], what: 'a written request' },
    );
    const statement = JSON.parse(readFileSync(at(request), 'utf8')) as object;
    const oncall = `${DEMO}/oncall.sigstore.json`;
    const lead = `${DEMO}/lead.sigstore.json`;
    await sign(svc, oncall, statement, ONCALL);
    await sign(svc, lead, statement, LEAD);
    out(`(signed keyless as ${ONCALL.san} -> ${oncall},`);
    out(` co-signed as ${LEAD.san} -> ${lead}, both logged in the local Rekor)`);
    const breakGlass = ['--break-glass', oncall, '--break-glass', lead];
    await gate(check('production', ...breakGlass), subject, {
      exit: 0,
      says: ['ALLOW BY BREAK-GLASS OVERRIDE', 'overrode:'],
      what: 'an override',
    });

    heading('4d. The same request again: break-glass is single use');
    await gate(check('production', ...breakGlass), subject, {
      exit: 1,
      says: ['DENY:', 'BREAK_GLASS_REPLAYED'],
      what: 'a deny refusing the replay',
    });

    heading(`4e. The audit ledger: ${LEDGER} (hash-chained, checkpoints signed)`);
    await gate(['audit', 'query', '--config', CONFIG], subject, {
      exit: 0,
      says: ['override', 'deny', 'allow'],
      what: 'the recorded decisions',
    });
    await gate(['audit', 'verify', '--config', CONFIG], subject, {
      exit: 0,
      says: ['ledger verified: 4 records'],
      what: 'a verified chain',
    });

    heading('5. An image in an OCI registry, attestations beside it, decided by tag');
    await imageStep(svc);
  } finally {
    await svc.close();
  }

  heading('6. Real attestations: `gate demo` verifies examples/ against the public-good root');
  await gate(['demo'], '', {
    exit: 0,
    says: ['VERIFIED'],
    what: 'verified examples',
    condensed: /^(\S| {2}signer| {2}log entry)/,
  });
  out('(condensed: `node dist/cli/main.js demo` prints each verified statement in full)');

  out(`\ndemo passed in ${((Date.now() - started) / 1000).toFixed(1)} s; files in ${DEMO}/`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(
      `\ndemo FAILED: ${err instanceof DemoFailure ? message : `unexpected error: ${message}`}\n`,
    );
    process.exit(1);
  },
);
