import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openAuditLedger } from '../../src/audit/open.js';
import { loadConfig } from '../../src/config.js';
import type { Decision } from '../../src/decision.js';
import { buildWasmBundle } from '../../src/evaluate/opa-cli.js';
import { expect } from 'vitest';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import {
  startLocalSigstore,
  type LocalSigstore,
  type TransparencyLogInstanceJSON,
} from '../support/sigstore-services.js';

/**
 * The real gate as its users run it, for the fault tests: `node dist/cli/main.js check` and
 * `node dist/cli/main.js serve` as child processes (dist is built by `make build`), misbehaving
 * HTTP servers on 127.0.0.1 in this process, and the ledger read back afterwards.
 */
export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
/** every decision in these tests has this deadline (deadlineMs in the configurations written) */
export const DEADLINE_MS = 1500;
/** a process's own start (node, the policy, the trusted root, the ledger) on this machine */
export const START_MARGIN_MS = 3500;
/** what a server may take beyond the deadline to verify, decide, record and answer */
export const ANSWER_MARGIN_MS = 700;

export const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');

// ---------------------------------------------------------------------------------------------
// evidence, policy, trust

export interface Fixture {
  dir: string;
  svc: LocalSigstore;
  /** an `opa build -t wasm` bundle of test/fixtures/policies/requires-provenance */
  policy: string;
  /** the local Sigstore services' trusted root (plus any extra logs), as a file */
  trustedRoot: string;
  /** a keyless bundle (JSON form) of SLSA provenance about `sha256:<hex>`, from the local services */
  provenance(hex: string): Promise<object>;
  close(): Promise<void>;
}

/**
 * A temp folder, the local Sigstore services, the test policy every subject of which needs a
 * verified SLSA provenance (so a subject the sources would show provenance for is allowed, and
 * one they cannot be asked about must not be), and the trusted root written to a file.
 */
export async function startFixture(
  extraLogs: TransparencyLogInstanceJSON[] = [],
): Promise<Fixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-faults-'));
  const svc = await startLocalSigstore();
  const policy = path.join(dir, 'policy.tar.gz');
  writeFileSync(
    policy,
    await buildWasmBundle(path.join(FIXTURES, 'policies', 'requires-provenance')),
  );
  const trustedRoot = path.join(dir, 'trusted_root.json');
  const root = { ...svc.trustedRoot, tlogs: [...svc.trustedRoot.tlogs, ...extraLogs] };
  writeFileSync(trustedRoot, JSON.stringify(root));
  return {
    dir,
    svc,
    policy,
    trustedRoot,
    async provenance(subject) {
      const m = await mintDSSEBundle(svc, {
        statement: provenanceStatement(subject),
        version: '0.3',
        signer: 'keyless',
      });
      return m.bundle;
    },
    async close() {
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function provenanceStatement(subject: string): object {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app', digest: { sha256: subject } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: { buildType: 'https://gate-test.example/build/v1' },
      runDetails: { builder: { id: 'https://gate-test.example/builder/v1' } },
    },
  };
}

/**
 * A gate.yaml (JSON is YAML) in `dir`: the fixture's policy and root, the test deadline, the
 * ledger in `dir` unless given; `extra` is merged in at the top level.
 */
export function writeConfig(
  fx: Fixture,
  dir: string,
  name: string,
  extra: Record<string, unknown>,
): string {
  const file = path.join(dir, name);
  const doc = {
    trustedRoot: fx.trustedRoot,
    policy: { path: fx.policy },
    deadlineMs: DEADLINE_MS,
    ledger: { path: path.join(dir, `${path.basename(name, '.yaml')}.db`) },
    ...extra,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

// ---------------------------------------------------------------------------------------------
// child processes

const children = new Set<ChildProcess>();

/** SIGKILL for every child this module started that has not exited (afterAll, by pid). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** from spawning the process to its exit */
  ms: number;
  /** from the start of the decision (its `time`, once the gate was loaded) to the exit */
  decideMs?: number;
  /** stdout parsed, with --format json */
  decision?: Decision;
}

/**
 * Runs `gate ARGS...`; `wrap` runs it under another program (prlimit). A process still running
 * after `killAfterMs` is killed: a hang shows as SIGKILL and a long `ms`, never as a pass.
 */
export function runGate(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; wrap?: string[]; killAfterMs?: number } = {},
): Promise<Run> {
  const [file, argv] = opts.wrap
    ? [opts.wrap[0]!, [...opts.wrap.slice(1), process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  const started = performance.now();
  const child = track(
    spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: 'pipe' }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const ended = Date.now();
      let decision: Decision | undefined;
      try {
        decision = JSON.parse(stdout) as Decision;
      } catch {
        decision = undefined;
      }
      const decideMs = decision ? ended - Date.parse(decision.time) : undefined;
      resolve({ code, signal, stdout, stderr, ms, ...(decision ? { decision, decideMs } : {}) });
    });
  });
}

/** `gate check` of one subject in dev, with the decision printed as JSON. */
export function check(config: string, subject: string, opts: Parameters<typeof runGate>[1] = {}) {
  const args = ['check', '--config', config, '--subject', `sha256:${subject}`, '--env', 'dev'];
  return runGate([...args, '--format', 'json'], opts);
}

export interface Serving {
  /** http://127.0.0.1:<port> */
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** the exit code and signal */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `gate serve --config CONFIG --port 0` on 127.0.0.1, once it listens. */
export async function startServe(config: string, env: NodeJS.ProcessEnv = {}): Promise<Serving> {
  const child = track(
    spawn(process.execPath, [CLI, 'serve', '--config', config, '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const done = (fn: () => void) => {
      clearInterval(poll);
      clearTimeout(giveUp);
      fn();
    };
    const poll = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) done(() => resolve(Number(m[1])));
    }, 25);
    const giveUp = setTimeout(
      () => done(() => reject(new Error(`gate serve did not start: ${stderr}`))),
      30_000,
    );
    void exited.then(() => done(() => reject(new Error(`gate serve exited: ${stderr}`))));
  });
  return { url: `http://127.0.0.1:${port}`, child, stderr: () => stderr, exited };
}

export interface Answer {
  status: number;
  /** the decision (or error) the server answered */
  body: Decision & { error?: { code: string; message: string } };
  ms: number;
}

/** POST /v1/decisions for one subject in dev; undefined when no answer came (connection cut). */
export async function decide(
  url: string,
  subject: string,
  timeoutMs = 20_000,
): Promise<Answer | undefined> {
  const started = performance.now();
  try {
    const res = await fetch(`${url}/v1/decisions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ subjects: [`sha256:${subject}`], environment: 'dev' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as Answer['body'];
    return { status: res.status, body, ms: performance.now() - started };
  } catch {
    return undefined;
  }
}

/**
 * A refused or dropped connection is retried with backoff: when the retries are spent before the
 * deadline it is SOURCE_UNREACHABLE, when the deadline comes first SOURCE_TIMEOUT.
 */
export const UNREACHABLE = ['SOURCE_UNREACHABLE', 'SOURCE_TIMEOUT'];

/** Never an allow: could not decide, with one of `codes`, naming `where`, within the deadline. */
export function expectCouldNotDecide(run: Run, codes: string[], where: string): void {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(2);
  expect(run.decision).toMatchObject({ outcome: 'error', allow: false });
  expect(codes).toContain(run.decision!.error!.code);
  expect(run.decision!.error!.message).toContain(`could not look at ${where}`);
  if (run.decision!.error!.code === 'SOURCE_TIMEOUT')
    expect(run.decision!.error!.message).toMatch(/the decision's deadline of 1500 ms passed/);
  expectInTime(run);
}

/**
 * Answered within the deadline: from the decision's start (its recorded time) to the process's
 * exit, and from spawning the process, with room for starting node and loading the gate.
 */
export function expectInTime(run: Run): void {
  expect(run.decideMs).toBeDefined();
  expect(run.decideMs!).toBeLessThan(DEADLINE_MS + ANSWER_MARGIN_MS);
  expect(run.ms).toBeLessThan(DEADLINE_MS + START_MARGIN_MS);
}

// ---------------------------------------------------------------------------------------------
// misbehaving services

export type Misbehaviour =
  /** accepts the connection, reads the request, never answers */
  | 'hang'
  /** 200 and a JSON content type, then the body one byte a second, never finished */
  | 'drip'
  /** 200 with a body that is not JSON at all */
  | 'garbage'
  /** 200 with JSON of the wrong shape */
  | 'wrong-json'
  /** 200 declaring 4096 bytes, sends 20, then closes the connection */
  | 'truncated'
  /** 429 with Retry-After: 100000 (more than a day), on every request */
  | 'storm'
  /** a store holding nothing for the digest (404, as GitHub answers), after 800 ms */
  | 'slow';

export interface Faulty {
  /** http://127.0.0.1:<port> */
  url: string;
  /** requests seen */
  hits: number;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 that answers every request (any path, any method) in one bad way. */
export async function startFaulty(mode: Misbehaviour): Promise<Faulty> {
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const state: Faulty = { url: '', hits: 0, close: async () => {} };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    state.hits++;
    req.resume();
    switch (mode) {
      case 'hang':
        return;
      case 'drip': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const body = `{"attestations": [${' '.repeat(1000)}]}`;
        let i = 0;
        const t = setInterval(() => {
          if (res.destroyed || i >= body.length) return clearInterval(t);
          res.write(body[i++]!);
        }, 1000);
        timers.add(t);
        return;
      }
      case 'garbage':
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('<html><body>502 Bad Gateway</body></html>\n\u0000\u00ff');
      case 'wrong-json':
        // an array where an object is wanted, an object where an array is
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(req.method === 'POST' ? '{"ids": "none"}' : '[{"attestations": 7}]');
      case 'truncated':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        res.write('{"attestations": [{"');
        setImmediate(() => res.socket?.destroy());
        return;
      case 'slow': {
        const t = setTimeout(() => {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"message": "Not Found"}');
        }, 800);
        timers.add(t);
        return;
      }
      case 'storm':
        return void res
          .writeHead(429, { 'retry-after': '100000', 'content-type': 'application/json' })
          .end('{"message": "API rate limit exceeded"}');
    }
  };
  const server: Server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}

/** A port nothing listens on (bound, then closed): connections to it are refused. */
export async function closedPortUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------------------------
// the ledger afterwards

export interface Recorded {
  /** every decision id in the ledger, in chain order */
  ids: string[];
  /** outcome by id */
  outcomes: Map<string, string>;
  /** the chain and its indexes verify */
  ok: boolean;
}

/** Reads the ledger a configuration names (through the ledger module), and verifies it. */
export async function readLedger(config: string, env: NodeJS.ProcessEnv = {}): Promise<Recorded> {
  const c = loadConfig(config, { env: { ...process.env, ...env } });
  const ledger = await openAuditLedger(c.ledger, { readOnly: true });
  try {
    const ids: string[] = [];
    const outcomes = new Map<string, string>();
    for await (const r of ledger.records()) {
      ids.push(r.id);
      outcomes.set(r.id, r.decision.outcome);
    }
    const verified = await ledger.verify();
    return { ids, outcomes, ok: verified.ok };
  } finally {
    await ledger.close();
  }
}

/** `gate audit verify` as an auditor runs it: exit 0 when the chain and indexes hold. */
export function auditVerify(config: string, env: NodeJS.ProcessEnv = {}) {
  return runGate(['audit', 'verify', '--config', config, '--format', 'json'], { env });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs at most `n` of the functions given at once (gate processes on a 2-core machine). */
export function limiter(n: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    while (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Starts `fn` for every key, at most `n` at once, and keeps each promise by key: the tests of a
 * describe block then await their own. (A rejection is reported by the test that awaits it.)
 * Runs whose time is measured against the deadline go one at a time (n = 1): two gates starting
 * together on a 2-core machine measure each other, not the fault.
 */
export function prefetch<K, T>(keys: readonly K[], n: number, fn: (k: K) => Promise<T>) {
  const limit = limiter(n);
  const out = new Map<K, Promise<T>>();
  for (const k of keys) {
    const p = limit(() => fn(k));
    p.catch(() => undefined);
    out.set(k, p);
  }
  return out;
}
