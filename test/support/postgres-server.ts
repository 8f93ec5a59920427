import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL server for the ledger tests: a fresh cluster (initdb) in a temporary
 * folder, listening on 127.0.0.1 on a free port and on a socket in that folder, trusting local
 * connections. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
 * user. The binaries are Debian's (/usr/lib/postgresql/N/bin, or PG_BIN);
 * test/support/ensure-postgres.sh installs them, and `make test` runs it first.
 */
export interface PostgresServer {
  /** superuser url of the `postgres` database */
  readonly url: string;
  readonly port: number;
  /** a new empty database; its url */
  createDatabase(): Promise<string>;
  /** stops the server (fast shutdown: connections are dropped) */
  stop(): Promise<void>;
  /** starts it again on the same port, with its data */
  start(): Promise<void>;
  /** stops it and removes its files */
  close(): Promise<void>;
}

export function postgresBinDir(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debian, v, 'bin')));
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config on PATH
  }
  const found = candidates.find((d) => existsSync(path.join(d, 'postgres')));
  if (!found) {
    throw new Error(
      'postgresql server binaries not found (looked in PG_BIN, /usr/lib/postgresql/*/bin and ' +
        'pg_config --bindir): run test/support/ensure-postgres.sh as root (make test does), ' +
        'or install postgresql, or set PG_BIN',
    );
  }
  return found;
}

/** As root, commands run as this user: PostgreSQL will not run as root. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.PG_TEST_USER ?? 'postgres';
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { name, uid, gid };
  } catch {
    throw new Error(
      `running as root, and there is no user ${name} to run postgresql as: ` +
        'run test/support/ensure-postgres.sh as root (it creates one), or set PG_TEST_USER',
    );
  }
}

function runuser(): string {
  return ['/usr/sbin/runuser', '/sbin/runuser'].find((f) => existsSync(f)) ?? 'runuser';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const user = serverUser();
  // as root, in /tmp: the server's user must be able to reach the folder (TMPDIR may be private)
  const dir = mkdtempSync(path.join(user ? '/tmp' : tmpdir(), 'gate-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const command = (tool: string, args: string[]): [string, string[]] =>
    user
      ? [runuser(), ['-u', user.name, '--', path.join(bin, tool), ...args]]
      : [path.join(bin, tool), args];
  const exec = async (tool: string, args: string[]) => {
    const [file, argv] = command(tool, args);
    try {
      await run(file, argv, { cwd: dir, timeout: 60_000 });
    } catch (err) {
      const tail = existsSync(log)
        ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')
        : '';
      throw new Error(`${tool} failed: ${(err as Error).message}\n${tail}`, { cause: err });
    }
  };
  const pgCtl = (args: string[]) => exec('pg_ctl', ['-D', data, ...args]);

  await exec('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  let port = 0;
  let running = false;
  const start = async () => {
    // fsync off for a throwaway server's speed; the ledger itself asks for synchronous commits
    const serverOptions = `-h 127.0.0.1 -p ${port} -k ${dir} -c max_connections=100 -c fsync=off`;
    await pgCtl(['-l', log, '-w', '-t', '60', '-o', serverOptions, 'start']);
    running = true;
  };
  const stopNow = () => {
    if (!running) return;
    running = false;
    const [file, argv] = command('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    try {
      execFileSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // already gone
    }
  };
  // a test process that dies without its afterAll still stops its server
  process.once('exit', stopNow);

  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 3) throw err; // another process took the port meanwhile: try another
    }
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let databases = 0;
  return {
    url,
    port,
    async createDatabase() {
      const name = `ledger_${process.pid}_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await pgCtl(['-m', 'fast', '-w', 'stop']);
      running = false;
    },
    start,
    async close() {
      stopNow();
      process.removeListener('exit', stopNow);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
