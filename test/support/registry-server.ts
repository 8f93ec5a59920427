import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where `make test` builds crane (the Makefile's CRANE); CRANE overrides it. */
export const CRANE = process.env.CRANE ?? path.resolve(process.cwd(), '.tools/bin/crane');

/**
 * A real OCI registry for the tests: go-containerregistry's `crane registry serve`, in memory,
 * on 127.0.0.1 on a free port. It has no referrers API (it answers 404 METHOD_UNKNOWN), so the
 * referrers API is tested through test/support/registry-shim.ts in front of it.
 */
export interface RegistryServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** 127.0.0.1:<port>, as image references name it */
  readonly host: string;
  close(): Promise<void>;
}

export async function startRegistry(): Promise<RegistryServer> {
  if (!existsSync(CRANE)) {
    throw new Error(`crane not found at ${CRANE}: run \`make .tools/bin/crane\` (make test does)`);
  }
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const child = spawn(CRANE, ['registry', 'serve', '--address', host], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitReady(`http://${host}/v2/`, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`crane registry did not start: ${(err as Error).message}\n${log}`);
  }
  return { url: `http://${host}`, host, close: () => stop(child, exited) };
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error('not ready after 5 s');
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited;
  }
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
