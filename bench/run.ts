/**
 * `make bench`: every figure of the gate side by side in one run, on this machine, now. Writes
 * bench/results.json (a list of {name, value, unit}), prints a table, and checks each goal as a
 * ratio measured in the same run (a miss is printed as one, never hidden). Timings are medians
 * or rates over many runs; the machine is shared, so only the ratios are meant to be compared.
 *
 * Evidence is real: keyless bundles minted now against the local Sigstore services
 * (test/support), each with its own signer, a Rekor entry and an RFC 3161 timestamp.
 *
 * Run from the repository root after `make build policies` and with cosign in .tools/bin.
 */
import autocannon from 'autocannon';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSqliteLedger } from '../src/audit/sqlite.js';
import type { Evidence } from '../src/collect/types.js';
import { normalise } from '../src/config.js';
import { findOpa, IGNORE } from '../src/evaluate/opa-cli.js';
import { loadCompiledPolicy } from '../src/evaluate/policy.js';
import { createGate, type Gate } from '../src/gate.js';
import { packagePath } from '../src/util/paths.js';
import { createVerifyCache } from '../src/verify/cache.js';
import { verifyEvidence } from '../src/verify/evidence.js';
import { trustFromJSON } from '../src/verify/trust.js';
import { verifyBundle } from '../src/verify/verifier.js';
import { sampleDecision } from '../test/audit/sqlite-child.js';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../test/support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../test/support/sigstore-services.js';

type Result = { name: string; value: number; unit: string };
const results: Result[] = [];
const put = (name: string, value: number, unit: string) => {
  results.push({ name, value: Math.round(value * 1000) / 1000, unit });
  console.log(`  ${name.padEnd(44)} ${fmt(value)} ${unit}`);
};
const get = (name: string) => results.find((r) => r.name === name)?.value ?? NaN;
const fmt = (n: number) =>
  n.toLocaleString('en-US', { maximumFractionDigits: n < 10 ? 2 : n < 1000 ? 1 : 0 });
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const BIN = packagePath('dist', 'cli', 'main.js');
const COSIGN = process.env.COSIGN ?? packagePath('.tools', 'bin', 'cosign');
const POLICY = packagePath('test', 'fixtures', 'policies', 'requires-provenance');
const N_BUNDLES = Number(process.env.GATE_BENCH_BUNDLES ?? 1000);

/** Operations per second of `fn`, run for at least `ms` after a short warm-up. */
function rate(fn: () => void, ms = 1500): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

function percentile(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Median wall time (ms) of a process, started `runs` times (after one unmeasured start). */
async function processMs(cmd: string, args: string[], runs = 9, cwd?: string): Promise<number> {
  const once = async () => {
    const t = performance.now();
    await promisify(execFile)(cmd, args, { cwd, maxBuffer: 16 << 20 }).catch((e: unknown) => {
      const err = e as { code?: number };
      if (typeof err.code !== 'number') throw e; // a non-zero exit still times the run
    });
    return performance.now() - t;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  return percentile(times, 50);
}

const statement = (hex: string) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app', digest: { sha256: hex } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
});

async function mintMany(svc: LocalSigstore, hex: string, n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const m = await mintDSSEBundle(svc, {
      statement: statement(hex),
      version: '0.3',
      signer: 'keyless',
      tsa: true,
    });
    out.push(Buffer.from(JSON.stringify(m.bundle)));
  }
  return out;
}

const evidenceOf = (bytes: Buffer, i: number): Evidence => ({
  id: createHash('sha256').update(bytes).digest('hex'),
  source: `bench:${i}`,
  kind: 'bundle',
  bytes,
});

async function gateOn(
  dir: string,
  rootFile: string,
  evidence: Evidence[],
  cache: boolean,
): Promise<Gate> {
  const ledgerDir = mkdtempSync(path.join(dir, 'ledger-'));
  const config = normalise(
    {
      trustedRoot: rootFile,
      policy: { path: POLICY },
      ledger: { path: path.join(ledgerDir, 'ledger.db') },
      verifyCache: cache ? {} : { maxEntries: 0 },
    },
    dir,
    'bench',
  );
  return createGate(config, {
    sources: () => [
      { name: 'bench', collect: async () => ({ evidence, rejected: [], failures: [] }) },
    ],
  });
}

/** ms per decision on `hex`, each sample one decision. */
async function decisionsMs(gate: Gate, hex: string, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const d = await gate.check({
      subjects: [{ digest: { algorithm: 'sha256', hex } }],
      environment: 'dev',
    });
    samples.push(performance.now() - t);
    if (d.outcome !== 'allow')
      throw new Error(
        `bench decision was ${d.outcome}: ${JSON.stringify(d.error ?? d.violations)}`,
      );
  }
  return samples;
}

async function serverLoad(
  args: string[],
  body: string,
): Promise<{ perS: number; p99: number; errors: number; bytes: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/server-child.ts', ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: packagePath(),
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`server child exited ${c}`)));
  });
  try {
    const opts = {
      url: `http://127.0.0.1:${port}/v1/decisions`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body,
      connections: 50,
    };
    await autocannon({ ...opts, duration: 2 }); // warm-up: caches, JIT
    const r = await autocannon({ ...opts, duration: 10 });
    return {
      perS: r.requests.average,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts + r.non2xx,
      bytes: r.throughput.average / Math.max(1, r.requests.average),
    };
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-bench-'));
  const svc = await startLocalSigstore();
  try {
    console.log('crypto floor');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const message = Buffer.from('the floor');
    const signature = sign('sha256', message, privateKey);
    put(
      'crypto.ecdsa_p256.verify_per_s',
      rate(() => verify('sha256', message, publicKey, signature)),
      '/s',
    );

    console.log(`minting ${N_BUNDLES} keyless bundles (Rekor + TSA, one signer each)`);
    const hex = sha('bench app');
    const bundles = await mintMany(svc, hex, N_BUNDLES);
    const rootFile = path.join(dir, 'trusted_root.json');
    writeFileSync(rootFile, JSON.stringify(svc.trustedRoot));
    const trust = trustFromJSON(svc.trustedRoot, sha('bench root'), 'bench');

    console.log('verification');
    let t = performance.now();
    for (const b of bundles) verifyBundle(b, { trust, identities: 'any' });
    put(
      'verify.keyless_rekor_tsa.bundles_per_s',
      (bundles.length * 1000) / (performance.now() - t),
      '/s',
    );
    const evidence = bundles.map(evidenceOf);
    const ctx = { trust, identities: 'any' as const, keys: [], cache: createVerifyCache() };
    const subjects = [{ algorithm: 'sha256' as const, hex }];
    verifyEvidence(evidence.slice(0, 100), subjects, ctx);
    t = performance.now();
    let cachedRuns = 0;
    while (performance.now() - t < 1500) {
      verifyEvidence(evidence.slice(0, 100), subjects, ctx);
      cachedRuns += 100;
    }
    put(
      'verify.keyless_rekor_tsa.cached_per_s',
      (cachedRuns * 1000) / (performance.now() - t),
      '/s',
    );

    console.log(
      'policy evaluation (default library, examples/policy-inputs/allow-production.json)',
    );
    const inputFile = packagePath('examples', 'policy-inputs', 'allow-production.json');
    const input = JSON.parse(readFileSync(inputFile, 'utf8')) as unknown;
    const policy = await loadCompiledPolicy(packagePath('dist', 'policy', 'bundle.tar.gz'));
    put(
      'evaluate.wasm.per_s',
      rate(() => policy.evaluate(input)),
      '/s',
    );
    // the floor of any policy through opa-wasm's ABI: the input's JSON written into the module
    // and parsed there, a small policy (one rule: a provenance attestation), the result read back
    const trivial = await loadCompiledPolicy(POLICY);
    put(
      'evaluate.wasm.trivial_policy_per_s',
      rate(() => trivial.evaluate(input)),
      '/s',
    );
    const opa = JSON.parse(
      execFileSync(
        findOpa(),
        [
          'bench',
          '--format',
          'json',
          ...IGNORE,
          '-d',
          packagePath('policies'),
          '-i',
          inputFile,
          'data.gate.decision',
        ],
        {
          maxBuffer: 64 << 20,
        },
      ).toString('utf8'),
    ) as { N: number; T: number };
    put('evaluate.opa_go.per_s', (opa.N * 1e9) / opa.T, '/s');

    console.log('decisions in process (durable SQLite ledger)');
    const five = evidence.slice(0, 5);
    const cold = await gateOn(dir, rootFile, five, false);
    put(
      'decision.cold_5_attestations.p50_ms',
      percentile(await decisionsMs(cold, hex, 30), 50),
      'ms',
    );
    await cold.close();
    const warm = await gateOn(dir, rootFile, five, true);
    await decisionsMs(warm, hex, 20);
    const cachedSamples = await decisionsMs(warm, hex, 500);
    put('decision.cached.p50_ms', percentile(cachedSamples, 50), 'ms');
    put('decision.cached.p99_ms', percentile(cachedSamples, 99), 'ms');
    await warm.close();
    for (const n of [10, 100, 1000].filter((k) => k <= evidence.length)) {
      const g = await gateOn(dir, rootFile, evidence.slice(0, n), false);
      await decisionsMs(g, hex, 1);
      const ms = percentile(await decisionsMs(g, hex, n >= 1000 ? 3 : 7), 50);
      put(`decision.attestations_${n}.ms`, ms, 'ms');
      await g.close();
    }

    console.log('ledger');
    const ledger = createSqliteLedger({
      path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db'),
    });
    const samples = Array.from({ length: 300 }, (_, i) => sampleDecision(i));
    t = performance.now();
    for (const s of samples) await ledger.append(s.decision, s.input);
    put('ledger.append_durable_per_s', (samples.length * 1000) / (performance.now() - t), '/s');
    await ledger.close();

    console.log('server: 50 connections from a second process (autocannon), 10 s each');
    const serverDir = path.join(dir, 'server');
    mkdirSync(path.join(serverDir, 'evidence'), { recursive: true });
    bundles
      .slice(0, 3)
      .forEach((b, i) => writeFileSync(path.join(serverDir, 'evidence', `${i}.sigstore.json`), b));
    writeFileSync(
      path.join(serverDir, 'gate.yaml'),
      `trustedRoot: ${rootFile}\nsources: { bundles: [evidence] }\npolicy: { path: ${POLICY} }\nledger: { path: ledger.db }\n`,
    );
    const body = JSON.stringify({ subjects: [`sha256:${hex}`], environment: 'dev' });
    const real = await serverLoad(['gate', serverDir], body);
    put('server.decisions_per_s', real.perS, '/s');
    put('server.decisions.p99_ms', real.p99, 'ms');
    put('server.errors', real.errors, 'requests');
    const ceiling = await serverLoad(['ceiling', String(Math.round(real.bytes))], body);
    put('server.ceiling_per_s', ceiling.perS, '/s');

    console.log('processes (median of 9 starts)');
    const bundleFile = path.join(dir, 'bundle.sigstore.json');
    writeFileSync(bundleFile, bundles[0]!);
    const id = [
      '--certificate-identity',
      DEFAULT_IDENTITY.san,
      '--certificate-oidc-issuer',
      DEFAULT_IDENTITY.issuer,
    ];
    put('node.bare_start.ms', await processMs(process.execPath, ['-e', '0']), 'ms');
    put('cli.help.ms', await processMs(process.execPath, [BIN, '--help']), 'ms');
    put(
      'cli.verify_bundle.ms',
      await processMs(process.execPath, [
        BIN,
        'verify-bundle',
        '--bundle',
        bundleFile,
        ...id,
        '--trusted-root',
        rootFile,
        `sha256:${hex}`,
      ]),
      'ms',
    );
    put(
      'cli.check.cold_ms',
      await processMs(
        process.execPath,
        [
          BIN,
          'check',
          '--subject',
          `sha256:${hex}`,
          '--env',
          'dev',
          '--bundle',
          bundleFile,
          '--trusted-root',
          rootFile,
          '--policy',
          POLICY,
        ],
        9,
        dir,
      ),
      'ms',
    );
    put(
      'peer.cosign_verify_blob_attestation.ms',
      await processMs(COSIGN, [
        'verify-blob-attestation',
        '--bundle',
        bundleFile,
        '--trusted-root',
        rootFile,
        ...id,
        '--type',
        'https://slsa.dev/provenance/v1',
        '--digest',
        hex,
        '--digestAlg',
        'sha256',
      ]),
      'ms',
    );
  } finally {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  }

  writeFileSync(packagePath('bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log('\ngoals (ratios from this run)');
  const floorPerS = get('crypto.ecdsa_p256.verify_per_s') / 12;
  const goals: Array<[string, number, number, string]> = [
    [
      'cold verification / (floor / 12)',
      get('verify.keyless_rekor_tsa.bundles_per_s') / floorPerS,
      0.5,
      'at least',
    ],
    ['cached decision p50 (ms)', get('decision.cached.p50_ms'), 1, 'at most'],
    ['server decisions/s', get('server.decisions_per_s'), 3000, 'at least'],
    ['server p99 (ms)', get('server.decisions.p99_ms'), 20, 'at most'],
    ['server errors', get('server.errors'), 0, 'at most'],
    [
      'server / framework ceiling',
      get('server.decisions_per_s') / get('server.ceiling_per_s'),
      0.4,
      'at least',
    ],
    ['gate check cold (ms)', get('cli.check.cold_ms'), 250, 'at most'],
    ['gate verify-bundle (ms)', get('cli.verify_bundle.ms'), 250, 'at most'],
    [
      'verify-bundle / cosign',
      get('cli.verify_bundle.ms') / get('peer.cosign_verify_blob_attestation.ms'),
      3,
      'at most',
    ],
    ['gate --help / bare node', get('cli.help.ms') / get('node.bare_start.ms'), 1.5, 'at most'],
    ['policy evaluation (us)', 1e6 / get('evaluate.wasm.per_s'), 100, 'at most'],
    [
      'wasm / opa (Go) speed',
      get('evaluate.wasm.per_s') / get('evaluate.opa_go.per_s'),
      1,
      'at least',
    ],
    [
      '1000 attestations / (100 x 10)',
      get('decision.attestations_1000.ms') / (100 * get('decision.attestations_10.ms')),
      1.2,
      'at most',
    ],
  ];
  for (const [what, value, goal, dir] of goals) {
    const met = dir === 'at least' ? value >= goal : value <= goal;
    console.log(
      `  ${what.padEnd(36)} ${fmt(value).padStart(10)}   goal ${dir} ${fmt(goal)}: ${met ? 'met' : 'NOT MET'}`,
    );
  }
  console.log(
    `\nbench/results.json written (${results.length} figures) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
