import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packagePath } from '../../src/util/paths.js';

/**
 * The real Rekor v1 transparency log on 127.0.0.1, for the interop tests (issue 13): MariaDB
 * (Debian's, as a process of its own), Trillian's log server and signer with a tree made for the
 * run, and rekor-server with a file-based ECDSA P-256 signing key (a key made in memory would
 * change on every start, and SETs and checkpoints are signed when entries are read) and the MySQL
 * search index. Binaries from `make peers` (.tools/bin); the facts are in
 * ../shared/docs/real-sigstore-peers.md, read from the peers' sources. Everything is stopped and
 * removed by stop(), which also runs if the start fails half way.
 *
 * Rekor serves its Prometheus metrics on port 2112 on every interface, hard-coded. A second stack
 * started while one runs serves no metrics (rekor-server ignores that listener's error); nothing
 * else is shared, so test files may each run their own.
 */
export interface RealRekor {
  /** http://127.0.0.1:PORT */
  url: string;
  /** the log's public key (PEM), as GET /api/v1/log/publicKey serves it */
  publicKeyPem: string;
  /** the name rekor signs its checkpoints with (--rekor_server.hostname) */
  hostname: string;
  treeId: string;
  dir: string;
  /** sends a signal to one process of the stack (faults: SIGSTOP hangs it, SIGCONT resumes) */
  signal(process: RekorProcess, signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export type RekorProcess = 'mariadb' | 'trillian-server' | 'trillian-signer' | 'rekor';

export const REKOR_PEER_BINARIES = [
  'rekor-server',
  'rekor-cli',
  'trillian_log_server',
  'trillian_log_signer',
  'createtree',
] as const;
const TRILLIAN_VERSION = 'v1.7.3';

const bin = (name: string) => packagePath('.tools', 'bin', name);

/** Why the real log cannot start here, or undefined when it can. */
export function rekorPeerMissing(): string | undefined {
  const absent = REKOR_PEER_BINARIES.filter((b) => !existsSync(bin(b)));
  if (absent.length) return `not built: ${absent.join(', ')} (run make peers)`;
  if (!existsSync('/usr/sbin/mariadbd')) return 'mariadb is not installed (make peers installs it)';
  if (!existsSync(trillianSchema()))
    return `trillian's schema is not in the Go module cache (make peers)`;
  return undefined;
}

function trillianSchema(): string {
  const cache =
    process.env.GOMODCACHE ??
    (() => {
      try {
        return execFileSync('go', ['env', 'GOMODCACHE']).toString().trim();
      } catch {
        return path.join(process.env.HOME ?? '/root', 'go', 'pkg', 'mod');
      }
    })();
  return path.join(
    cache,
    'github.com',
    'google',
    `trillian@${TRILLIAN_VERSION}`,
    'storage',
    'mysql',
    'schema',
    'storage.sql',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`real rekor: ${what} did not come up within ${timeoutMs} ms`);
}

const answers = (url: string) => async () => (await fetch(url)).ok;

export async function startRealRekor(opts: { hostname?: string } = {}): Promise<RealRekor> {
  const missing = rekorPeerMissing();
  if (missing) throw new Error(`real rekor cannot start: ${missing}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-rekor-'));
  const children: ChildProcess[] = [];
  const byName = new Map<string, ChildProcess>();
  const logs: string[] = [];
  const run = (name: string, cmd: string, args: string[]) => {
    const out = path.join(dir, `${name}.log`);
    logs.push(out);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    const write = (d: Buffer) => writeFileSync(out, d, { flag: 'a' });
    child.stdout!.on('data', write);
    child.stderr!.on('data', write);
    children.push(child);
    byName.set(name, child);
    return child;
  };
  const stop = async () => {
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT'); // a process stopped by a fault test must be able to exit
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // MariaDB, owned by the mysql user (it refuses root's files and dies without a word)
    const data = path.join(dir, 'mysql');
    mkdirSync(data);
    const { uid, gid } = mysqlIds();
    chownSync(data, uid, gid);
    chownSync(dir, uid, gid);
    execFileSync(
      'mariadb-install-db',
      [
        '--user=mysql',
        `--datadir=${data}`,
        '--auth-root-authentication-method=socket',
        '--skip-test-db',
      ],
      { stdio: 'pipe' },
    );
    const dbPort = await freePort();
    const socket = path.join(dir, 'mysql.sock');
    run('mariadb', '/usr/sbin/mariadbd', [
      '--no-defaults',
      '--user=mysql',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${path.join(dir, 'mysql.pid')}`,
      '--bind-address=127.0.0.1',
      `--port=${dbPort}`,
      `--log-error=${path.join(dir, 'mysql.err')}`,
    ]);
    const sql = (text: string, db?: string) =>
      execFileSync(
        'mariadb',
        ['--no-defaults', `--socket=${socket}`, '-uroot', ...(db ? [db] : [])],
        {
          input: text,
          stdio: 'pipe',
        },
      );
    await until('mariadb', async () => {
      sql('SELECT 1');
      return true;
    });
    sql(
      "CREATE DATABASE test; CREATE USER 'gate'@'127.0.0.1' IDENTIFIED BY 'gate'; GRANT ALL ON test.* TO 'gate'@'127.0.0.1';",
    );
    sql(readFileSync(trillianSchema(), 'utf8'), 'test');
    const dsn = `gate:gate@tcp(127.0.0.1:${dbPort})/test?parseTime=true&interpolateParams=true`;
    const storage = ['--storage_system=mysql', '--quota_system=noop', `--mysql_uri=${dsn}`];

    // Trillian: the log server (with its admin API), then the signer that sequences entries
    const [rpc, http, signerRpc, signerHttp, rekorPort] = await Promise.all(
      Array.from({ length: 5 }, freePort),
    );
    run('trillian-server', bin('trillian_log_server'), [
      ...storage,
      `--rpc_endpoint=127.0.0.1:${rpc}`,
      `--http_endpoint=127.0.0.1:${http}`,
    ]);
    await until('trillian log server', answers(`http://127.0.0.1:${http}/healthz`));
    run('trillian-signer', bin('trillian_log_signer'), [
      ...storage,
      '--force_master',
      '--sequencer_interval=100ms',
      `--rpc_endpoint=127.0.0.1:${signerRpc}`,
      `--http_endpoint=127.0.0.1:${signerHttp}`,
    ]);
    const treeId = execFileSync(bin('createtree'), [`--admin_server=127.0.0.1:${rpc}`], {
      stdio: 'pipe',
    })
      .toString()
      .trim();
    if (!/^\d+$/.test(treeId)) throw new Error(`createtree printed ${JSON.stringify(treeId)}`);

    // Rekor, signing with a key on disk, indexing into the same database
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = path.join(dir, 'rekor.key.pem');
    writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const hostname = opts.hostname ?? '127.0.0.1';
    run('rekor', bin('rekor-server'), [
      'serve',
      '--trillian_log_server.address=127.0.0.1',
      `--trillian_log_server.port=${rpc}`,
      `--trillian_log_server.tlog_id=${treeId}`,
      '--rekor_server.address=127.0.0.1',
      `--port=${rekorPort}`,
      `--rekor_server.hostname=${hostname}`,
      `--rekor_server.signer=${keyFile}`,
      '--search_index.storage_provider=mysql',
      `--search_index.mysql.dsn=${dsn}`,
      '--enable_attestation_storage',
      `--attestation_storage_bucket=file://${path.join(dir, 'attestations')}?create_dir=true&no_tmp_dir=true`,
    ]);
    const url = `http://127.0.0.1:${rekorPort}`;
    await until('rekor-server', answers(`${url}/ping`));
    const publicKeyPem = await (await fetch(`${url}/api/v1/log/publicKey`)).text();
    const signal = (name: RekorProcess, sig: NodeJS.Signals) => {
      const child = byName.get(name);
      if (!child) throw new Error(`real rekor: no process ${name}`);
      child.kill(sig);
    };
    return { url, publicKeyPem, hostname, treeId, dir, signal, stop };
  } catch (err) {
    const tails = logs
      .filter((f) => existsSync(f))
      .map((f) => `${path.basename(f)}: ${readFileSync(f, 'utf8').slice(-600)}`)
      .join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
  }
}

function mysqlIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
  return { uid, gid };
}
