/**
 * The load `gate serve` must survive (issue 12): the real server (`node dist/cli/main.js serve`)
 * deciding on real evidence (keyless bundles minted now against the local Sigstore services),
 * with its durable SQLite ledger, under N concurrent clients for S seconds from this process
 * (autocannon). Reported: answers by status, shed requests (503 SERVER_OVERLOADED), any other
 * error, p50 and p99, the server's resident memory over the run, and afterwards whether every
 * answered decision is in the ledger and the chain verifies.
 *
 *   npx tsx bench/load.ts [--clients 200] [--seconds 60] [--out FILE.json]
 *
 * Run after `make build policies`. Exits 1 when an answered decision is missing from the ledger,
 * the chain does not verify, or an error other than shedding happened.
 */
import autocannon from 'autocannon';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { packagePath } from '../src/util/paths.js';
import { mintDSSEBundle } from '../test/support/mint.js';
import { startLocalSigstore } from '../test/support/sigstore-services.js';

const CLI = packagePath('dist', 'cli', 'main.js');
const POLICY = packagePath('test', 'fixtures', 'policies', 'requires-provenance');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export interface LoadResult {
  clients: number;
  seconds: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  byStatus: Record<string, number>;
  shed: number;
  /** errors other than shedding: other non-2xx answers, timeouts, connection errors */
  errors: number;
  answered: number;
  recorded: number;
  missingFromLedger: number;
  chainVerified: boolean;
  /** resident memory (ps), median of the first and of the last quarter of the run, and max */
  memoryMiB: { first: number; last: number; max: number };
  /**
   * the V8 heap in use (the server's /metrics): its floor (the lowest sample, after a collection)
   * in the first and in the last quarter of the run, which rises when something leaks, and max
   */
  heapMiB: { first: number; last: number; max: number };
}

async function mintEvidence(dir: string): Promise<{ hex: string; root: string }> {
  const svc = await startLocalSigstore();
  try {
    const hex = sha('load app');
    mkdirSync(path.join(dir, 'evidence'));
    for (let i = 0; i < 3; i++) {
      const m = await mintDSSEBundle(svc, {
        statement: {
          _type: 'https://in-toto.io/Statement/v1',
          subject: [{ name: 'app', digest: { sha256: hex } }],
          predicateType: 'https://slsa.dev/provenance/v1',
          predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
        },
        version: '0.3',
        signer: 'keyless',
        tsa: true,
      });
      writeFileSync(path.join(dir, 'evidence', `${i}.sigstore.json`), JSON.stringify(m.bundle));
    }
    const root = path.join(dir, 'trusted_root.json');
    writeFileSync(root, JSON.stringify(svc.trustedRoot));
    return { hex, root };
  } finally {
    await svc.close();
  }
}

/** Resident memory of a process in MiB (Linux). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The V8 heap in use, from the server's /metrics (nodejs_heap_size_used_bytes). */
async function heapMiB(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
    return m ? Number(m[1]) / 2 ** 20 : NaN;
  } catch {
    return NaN;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function runLoad(clients: number, seconds: number): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-load-'));
  try {
    const { hex, root } = await mintEvidence(dir);
    const config = path.join(dir, 'gate.yaml');
    writeFileSync(
      config,
      [
        `trustedRoot: ${root}`,
        'sources: { bundles: [evidence] }',
        `policy: { path: ${POLICY} }`,
        'ledger: { path: ledger.db }',
        '',
      ].join('\n'),
    );
    // e.g. GATE_LOAD_NODE_ARGS=--max-old-space-size=64: a leak would end the run in an OOM
    const nodeArgs = (process.env.GATE_LOAD_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(
      process.execPath,
      [...nodeArgs, CLI, 'serve', '--config', config, '--port', '0'],
      {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let head = '';
    const port = await new Promise<number>((resolve, reject) => {
      const onData = (d: Buffer) => {
        head += d.toString();
        const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(head);
        if (m) {
          child.stderr.off('data', onData);
          child.stderr.resume(); // the request log is drained, not kept
          resolve(Number(m[1]));
        }
      };
      child.stderr.on('data', onData);
      child.once('exit', (c) => reject(new Error(`gate serve exited ${c}: ${head}`)));
    });
    const memory: number[] = [];
    const heap: number[] = [];
    const sampler = setInterval(() => {
      memory.push(rssMiB(child.pid!));
      void heapMiB(port).then((h) => Number.isFinite(h) && heap.push(h));
    }, 1000);
    const answered = new Set<string>();
    const byStatus: Record<string, number> = {};
    let shed = 0;
    const r = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: clients,
      duration: seconds,
      timeout: 10,
      requests: [
        {
          method: 'POST',
          path: '/v1/decisions',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ subjects: [`sha256:${hex}`], environment: 'dev' }),
          onResponse: (status: number, body: string) => {
            byStatus[status] = (byStatus[status] ?? 0) + 1;
            try {
              const doc = JSON.parse(body) as { id?: string; error?: { code?: string } };
              if (status === 503 && doc.error?.code === 'SERVER_OVERLOADED') shed++;
              else if (doc.id) answered.add(doc.id);
            } catch {
              // counted by status; an unparsable answer is an error below
            }
          },
        },
      ],
    });
    clearInterval(sampler);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    const run = promisify(execFile);
    const exported = await run(
      process.execPath,
      [CLI, 'audit', 'export', '--config', config, '--format', 'jsonl'],
      {
        cwd: dir,
        maxBuffer: 1 << 30,
      },
    );
    const recorded = new Set<string>();
    for (const line of exported.stdout.split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line) as { id?: string; decision?: { id?: string } };
      const id = rec.decision?.id ?? rec.id;
      if (id) recorded.add(id);
    }
    const verified = await run(process.execPath, [CLI, 'audit', 'verify', '--config', config], {
      cwd: dir,
    }).then(
      () => true,
      () => false,
    );
    const ok2xx = byStatus['200'] ?? 0;
    const spread = (xs: number[], of: (ys: number[]) => number) => {
      const quarter = Math.max(1, Math.floor(xs.length / 4));
      return {
        first: of(xs.slice(0, quarter)),
        last: of(xs.slice(-quarter)),
        max: Math.max(...xs),
      };
    };
    return {
      clients,
      seconds,
      requests: r.requests.total,
      perSecond: r.requests.average,
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      byStatus,
      shed,
      errors: r.errors + r.timeouts + (r.non2xx - shed),
      answered: ok2xx,
      recorded: recorded.size,
      missingFromLedger: [...answered].filter((id) => !recorded.has(id)).length,
      chainVerified: verified,
      memoryMiB: spread(memory, median),
      heapMiB: spread(heap, (ys) => Math.min(...ys)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '60' },
      out: { type: 'string' },
    },
  });
  const result = await runLoad(Number(values.clients), Number(values.seconds));
  console.log(JSON.stringify(result, null, 2));
  if (values.out) writeFileSync(values.out, JSON.stringify(result, null, 2));
  const failed =
    result.missingFromLedger > 0 ||
    !result.chainVerified ||
    result.errors > 0 ||
    result.answered === 0;
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  void main();
}
