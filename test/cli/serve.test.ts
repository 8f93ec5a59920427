import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/cli/commands/serve.js';
import type { CommandIO } from '../../src/cli/io.js';
import { mintServerCert, type MintedCert } from '../server/tls-certs.js';
import { cli } from '../helpers.js';

/**
 * `gate serve` as a user starts it. Beyond loopback the decisions route needs a token by default
 * and a token needs TLS (issue 8, items 4 and 9); the last test runs the real command in a child
 * process over https and stops it with SIGTERM.
 */
let dir: string;
let cert: MintedCert;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-serve-'));
  cert = mintServerCert(dir, 'server');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out = { stdout: '', stderr: '' };
  const value: CommandIO = {
    cwd: dir,
    stdout: (t) => (out.stdout += t),
    stderr: (t) => (out.stderr += t),
  };
  return { out, io: value };
}

describe('refusing to start unprotected', () => {
  it('refuses to listen beyond loopback with no decisions token, in one coded line', async () => {
    const r = await cli(['serve', '--host', '0.0.0.0', '--port', '0'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'gate: SERVE_UNPROTECTED: gate serve would listen on 0.0.0.0, beyond loopback, with POST /v1/decisions open to anyone: set GATE_TOKEN_DECISIONS, or server.openDecisions: true in the configuration to serve it without a token\n',
    );
  }, 10_000);

  it('refuses a decisions token over plain http beyond loopback', async () => {
    const { out, io: cio } = io();
    const env = { GATE_TOKEN_DECISIONS: 'ci' };
    const code = await serveCommand({ host: '::', port: '0' }, { ...cio, env });
    expect(code).toBe(2);
    expect(out.stderr).toMatch(/^gate: SERVE_UNPROTECTED: .* over plain http: .*--tls-cert/);
    expect(out.stderr.split('\n')).toHaveLength(2);
  }, 10_000);

  it('refuses half a tls configuration', async () => {
    const r = await cli(['serve', '--tls-cert', cert.cert, '--port', '0'], dir);
    expect([r.code, r.stderr]).toEqual([
      2,
      'gate: USAGE_ERROR: --tls-cert and --tls-key go together: give both or neither\n',
    ]);
  });
});

describe('serving https beyond loopback', () => {
  let child: ChildProcess | undefined;
  afterAll(() => void child?.kill('SIGKILL'));

  it('serves decisions with a token and admission without one, then stops on SIGTERM', async () => {
    const config = path.join(dir, 'gate.yaml');
    writeFileSync(
      config,
      `ledger:\n  path: ${path.join(dir, 'ledger.db')}\nadmission:\n  exemptKinds: [ConfigMap]\n`,
    );
    const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config];
    args.push('--host', '0.0.0.0', '--port', '0', '--tls-cert', cert.cert, '--tls-key', cert.key);
    child = spawn(process.execPath, args, {
      env: { ...process.env, GATE_TOKEN_DECISIONS: 'ci-token' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((r) => child!.on('exit', (c) => r(c)));
    // Listening on every interface, fastify names each address: any will do.
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = /Server listening at https:\/\/[^"]+:(\d+)"/.exec(stderr);
        if (m) resolve(Number(m[1]));
      }, 50);
      void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
      setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000).unref();
      void exited.finally(() => clearInterval(timer));
    });
    const agent = new Agent({ connect: { ca: cert.pem, servername: 'localhost' } });
    const base = `https://127.0.0.1:${port}`;
    const post = (url: string, body: object, token?: string) =>
      request(`${base}${url}`, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const decision = { subjects: [`sha256:${'a'.repeat(64)}`], environment: 'dev' };
    expect((await post('/v1/decisions', decision)).statusCode).toBe(401);
    const decided = await post('/v1/decisions', decision, 'ci-token');
    expect(decided.statusCode).toBe(200);
    expect(await decided.body.json()).toMatchObject({ allow: false });
    const dry = await post('/v1/decisions', { ...decision, dryRun: true }, 'ci-token');
    expect([
      dry.statusCode,
      ((await dry.body.json()) as { error: { code: string } }).error.code,
    ]).toEqual([403, 'DRY_RUN_FORBIDDEN']);
    const review = (kind: string, object: object) => ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: `uid-${kind}`, kind: { kind }, operation: 'CREATE', object },
    });
    const configMap = await post('/v1/admission/dev?timeout=10s', review('ConfigMap', {}));
    expect(await configMap.body.json()).toMatchObject({
      response: { uid: 'uid-ConfigMap', allowed: true },
    });
    const rollout = await post('/v1/admission/dev?timeout=10s', review('Rollout', { spec: {} }));
    expect(await rollout.body.json()).toMatchObject({
      response: { uid: 'uid-Rollout', allowed: false, status: { code: 403 } },
    });
    await agent.close();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
