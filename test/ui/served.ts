import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import type { Decision } from '../../src/decision.js';
import { buildWasmBundle } from '../../src/evaluate/opa-cli.js';
import { FIXTURES } from '../helpers.js';
import { startFixture, type Fixture } from '../faults/support.js';
import { mintDSSEBundle } from '../support/mint.js';

/**
 * A real `gate serve` for the web view's tests, started as a user starts it (a child process of
 * the CLI), over a real SQLite ledger of real decisions: the local Sigstore services certify the
 * evidence, the test policy (test/fixtures/policies/requires-provenance) wants SLSA provenance
 * for every subject, decisions are asked of the server with POST /v1/decisions, and an override
 * is made by a real `gate check --break-glass` writing into the same ledger.
 */
export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const AUDIT_TOKEN = 'auditor-token-7f3a9c1e';
export const BREAK_GLASS_TOKEN = 'on-call-token-2b8d';
export const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');
/** a subject with provenance on disk: allowed in dev */
export const WITH_PROVENANCE = hex('ui: an app with provenance');
/** a subject with none: denied in dev, then let through by a break-glass request */
export const HOTFIX = hex('ui: a hotfix without provenance');
export const REQUEST_ID = 'req-ui-hotfix';
export const JUSTIFICATION = 'checkout is down <b>now</b>, the fix must ship';

export interface UiFixture {
  fx: Fixture;
  dir: string;
  /** the gate.yaml of the policy the decisions were made with */
  config: string;
  /** the same ledger, with a changed policy: nothing needs provenance any more */
  changedConfig: string;
  /** the checkpoint key's id as checkpoints name it: base64 of the SHA-256 of its DER SPKI */
  checkpointKeyId: string;
  /** a break-glass request signed by the configured requester, as a Sigstore bundle */
  sign(o: { requestId: string; subject: string; environment: string }): Promise<object>;
  close(): Promise<void>;
}

export async function startUiFixture(): Promise<UiFixture> {
  const fx = await startFixture();
  const dir = fx.dir;
  const evidence = path.join(dir, 'evidence');
  mkdirSync(evidence);
  writeFileSync(
    path.join(evidence, 'app.sigstore.json'),
    JSON.stringify(await fx.provenance(WITH_PROVENANCE)),
  );
  const ledgerKey = generateKeyPairSync('ed25519');
  writeFileSync(
    path.join(dir, 'ledger.key'),
    ledgerKey.privateKey.export({ format: 'pem', type: 'pkcs8' }),
  );
  const checkpointKeyId = createHash('sha256')
    .update(ledgerKey.publicKey.export({ format: 'der', type: 'spki' }))
    .digest('base64');
  const requester = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createPublicKey(requester.privateKey)
    .export({ format: 'pem', type: 'spki' })
    .toString();
  const keyId = createHash('sha256')
    .update(createPublicKey(pem).export({ format: 'der', type: 'spki' }))
    .digest('base64');
  const changedPolicy = path.join(dir, 'changed.tar.gz');
  writeFileSync(changedPolicy, await buildWasmBundle(changedPolicyDir(dir)));
  const doc = (policy: string) => ({
    trustedRoot: fx.trustedRoot,
    keys: [{ pem }],
    policy: {
      path: policy,
      config: {
        break_glass: {
          environments: { dev: { requesters: [{ key_id: keyId }], max_expiry_minutes: 60 } },
        },
      },
    },
    sources: { bundles: [evidence] },
    deadlineMs: 5000,
    ledger: {
      path: path.join(dir, 'ledger.db'),
      checkpointKey: path.join(dir, 'ledger.key'),
      checkpointEvery: { records: 2 },
    },
  });
  const config = path.join(dir, 'gate.yaml');
  writeFileSync(config, JSON.stringify(doc(fx.policy), null, 2));
  const changedConfig = path.join(dir, 'changed.yaml');
  writeFileSync(changedConfig, JSON.stringify(doc(changedPolicy), null, 2));
  const sign = async (o: { requestId: string; subject: string; environment: string }) => {
    const statement = breakGlassStatement({
      subjects: [{ digest: { algorithm: 'sha256', hex: o.subject } }],
      environment: o.environment,
      justification: JUSTIFICATION,
      ticket: 'INC-77',
      requester: keyId,
      expiresInMinutes: 45,
      now: new Date(),
      requestId: o.requestId,
    });
    const m = await mintDSSEBundle(fx.svc, {
      statement,
      version: '0.3',
      signer: 'key',
      privateKey: requester.privateKey,
    });
    return m.bundle as object;
  };
  // the break-glass request for HOTFIX in dev that gate check is handed as a file
  const bundle = await sign({ requestId: REQUEST_ID, subject: HOTFIX, environment: 'dev' });
  writeFileSync(path.join(dir, 'request.sigstore.json'), JSON.stringify(bundle));
  return {
    fx,
    dir,
    config,
    changedConfig,
    checkpointKeyId,
    sign,
    close: () => fx.close(),
  };
}

/** The test policy with its provenance rule taken out: a changed policy, for replay. */
function changedPolicyDir(dir: string): string {
  const out = path.join(dir, 'changed-policy');
  mkdirSync(out);
  const rego = readFileSync(
    path.join(FIXTURES, 'policies', 'requires-provenance', 'policy.rego'),
    'utf8',
  );
  const changed = rego.replace('\tnot has_provenance(hex)\n', '\tfalse\n');
  if (changed === rego) throw new Error('the test policy changed: update changedPolicyDir');
  writeFileSync(path.join(out, 'policy.rego'), changed);
  return out;
}

const children = new Set<ChildProcess>();

/** SIGKILL for every child this module started that is still running, by its own handle. */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}

function gateProcess(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export interface Served {
  /** the web view's address as `gate serve` printed it: http(s)://127.0.0.1:PORT/ui/ */
  webView: string;
  /** http(s)://127.0.0.1:PORT */
  origin: string;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** `gate serve --config CONFIG --port 0` with the audit token, once it prints its web view. */
export async function serve(
  config: string,
  tls?: { cert: string; key: string },
  env: NodeJS.ProcessEnv = {},
): Promise<Served> {
  const args = ['serve', '--config', config, '--port', '0'];
  if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  const child = gateProcess(args, {
    GATE_TOKEN_AUDIT: AUDIT_TOKEN,
    GATE_TOKEN_BREAK_GLASS: BREAK_GLASS_TOKEN,
    ...env,
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const webView = await new Promise<string>((resolve, reject) => {
    const done = (fn: () => void) => {
      clearInterval(poll);
      clearTimeout(giveUp);
      fn();
    };
    const poll = setInterval(() => {
      const m = /"msg":"web view at (https?:\/\/127\.0\.0\.1:\d+\/ui\/)"/.exec(stderr);
      if (m) done(() => resolve(m[1]!));
    }, 25);
    const giveUp = setTimeout(
      () => done(() => reject(new Error(`gate serve did not start: ${stderr}`))),
      60_000,
    );
    void exited.then(() => done(() => reject(new Error(`gate serve exited: ${stderr}`))));
  });
  return {
    webView,
    origin: new URL(webView).origin,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** POST /v1/decisions for one subject (under a stored break-glass request); the decision. */
export async function decide(
  origin: string,
  subject: string,
  environment = 'dev',
  breakGlass?: string,
) {
  const res = await fetch(`${origin}/v1/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      subjects: [`sha256:${subject}`],
      environment,
      ...(breakGlass ? { breakGlass } : {}),
    }),
  });
  return (await res.json()) as Decision;
}

/** POST /v1/break-glass (DELETE with `revoke`): the status and the body answered. */
export async function breakGlassRoute(
  origin: string,
  how: { store: object } | { revoke: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(
    'store' in how ? `${origin}/v1/break-glass` : `${origin}/v1/break-glass/${how.revoke}`,
    {
      method: 'store' in how ? 'POST' : 'DELETE',
      headers: {
        authorization: `Bearer ${BREAK_GLASS_TOKEN}`,
        ...('store' in how ? { 'content-type': 'application/json' } : {}),
      },
      ...('store' in how ? { body: JSON.stringify({ bundles: [how.store] }) } : {}),
    },
  );
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A real `gate ARGS...` as a child process: its exit code and output. */
export async function runGate(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = gateProcess(args, {});
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { code, stdout, stderr };
}

/** A real `gate check --break-glass` of HOTFIX in dev into the same ledger: the override. */
export async function breakGlass(ui: UiFixture): Promise<Decision> {
  const run = await runGate([
    ...['check', '--config', ui.config, '--subject', `sha256:${HOTFIX}`, '--env', 'dev'],
    ...['--break-glass', path.join(ui.dir, 'request.sigstore.json'), '--format', 'json'],
  ]);
  if (run.code !== 0) throw new Error(`gate check --break-glass exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Decision;
}

/** The screenshots kept as test artefacts (gitignored): test-artifacts/ui/NAME/, emptied first. */
export function artifactsFor(name: string): string {
  const dir = path.join(ROOT, 'test-artifacts', 'ui', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
