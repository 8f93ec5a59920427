/**
 * Cold keyless verification on this machine: mints N distinct keyless bundles (one signer each,
 * a Rekor entry and an RFC 3161 timestamp) against the local Sigstore services, then times
 * verifyBundle over them once each (no result cache) beside the raw ECDSA P-256 verify rate
 * measured in the same run. The goal of issue 11 is bundles/s >= 50% of (verifies/s / 12).
 *
 *   npx tsx bench/verify-cold.ts [N]            # default 500
 *   GATE_BENCH_SAVE=/tmp/b.json npx tsx ...     # also save the bundles and root for profiling
 *   GATE_BENCH_LOAD=/tmp/b.json node --cpu-prof --import tsx bench/verify-cold.ts
 */
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { trustFromJSON } from '../src/verify/trust.js';
import { verifyBundle } from '../src/verify/verifier.js';
import { mintDSSEBundle } from '../test/support/mint.js';
import { startLocalSigstore } from '../test/support/sigstore-services.js';

const N = Number(process.argv[2] ?? 500);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Wall and CPU (user + system) milliseconds of `fn`. */
function timed(fn: () => void): { wall: number; cpu: number } {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  fn();
  const used = process.cpuUsage(cpu);
  return { wall: performance.now() - wall, cpu: (used.user + used.system) / 1000 };
}

const floorKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const floorMessage = Buffer.from('the floor');
const floorSignature = sign('sha256', floorMessage, floorKey.privateKey);

/** Raw ECDSA P-256 verifications per second, by wall and by CPU time, over about `ms`. */
function ecdsaRate(ms: number): { wall: number; cpu: number } {
  const once = () => verify('sha256', floorMessage, floorKey.publicKey, floorSignature);
  for (let i = 0; i < 50; i++) once();
  let n = 0;
  const t = timed(() => {
    const start = performance.now();
    while (performance.now() - start < ms) {
      once();
      n++;
    }
  });
  return { wall: (n * 1000) / t.wall, cpu: (n * 1000) / t.cpu };
}

async function bundles(): Promise<{ root: unknown; bundles: Buffer[] }> {
  const load = process.env.GATE_BENCH_LOAD;
  if (load) {
    const saved = JSON.parse(readFileSync(load, 'utf8')) as { root: unknown; bundles: string[] };
    return { root: saved.root, bundles: saved.bundles.map((b) => Buffer.from(b)) };
  }
  const svc = await startLocalSigstore();
  try {
    const out: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const m = await mintDSSEBundle(svc, {
        statement: {
          _type: 'https://in-toto.io/Statement/v1',
          subject: [{ name: 'app', digest: { sha256: sha('bench app') } }],
          predicateType: 'https://slsa.dev/provenance/v1',
          predicate: {},
        },
        version: '0.3',
        signer: 'keyless',
        tsa: true,
      });
      out.push(Buffer.from(JSON.stringify(m.bundle)));
    }
    const save = process.env.GATE_BENCH_SAVE;
    if (save) {
      writeFileSync(
        save,
        JSON.stringify({ root: svc.trustedRoot, bundles: out.map((b) => b.toString()) }),
      );
    }
    return { root: svc.trustedRoot, bundles: out };
  } finally {
    await svc.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const { root, bundles: all } = await bundles();
  const trust = trustFromJSON(root, sha('bench root'), 'bench');
  ecdsaRate(300); // warm-up
  // Every bundle is new to the verifier: one pass, no repeats (the trusted root itself is
  // verified once per Trust, as it would be in a long-running gate). The machine is shared, so
  // the crypto floor is measured around every chunk of bundles and each chunk is compared with
  // the floor measured around it, by wall time and by this process's CPU time (which other
  // processes disturb less); the medians of those ratios are the figures.
  const CHUNK = 100;
  const wallRatios: number[] = [];
  const cpuRatios: number[] = [];
  const rates: number[] = [];
  let verifyMs = 0;
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const before = ecdsaRate(250);
    const t = timed(() => {
      for (const b of chunk) verifyBundle(b, { trust, identities: 'any' });
    });
    const after = ecdsaRate(250);
    verifyMs += t.wall;
    rates.push(before.wall, after.wall);
    const floor = (rate: 'wall' | 'cpu') => (before[rate] + after[rate]) / 2 / 12;
    wallRatios.push((chunk.length * 1000) / t.wall / floor('wall'));
    cpuRatios.push((chunk.length * 1000) / t.cpu / floor('cpu'));
  }
  const ecdsa = median(rates);
  const perS = (all.length * 1000) / verifyMs;
  console.log(
    JSON.stringify({
      bundles: all.length,
      ecdsa_p256_verify_per_s: Math.round(ecdsa),
      floor_bundles_per_s: Math.round(ecdsa / 12),
      bundles_per_s: Math.round(perS),
      ms_per_bundle: Number((1000 / perS).toFixed(3)),
      of_floor_wall_median: Number(median(wallRatios).toFixed(3)),
      of_floor_cpu_median: Number(median(cpuRatios).toFixed(3)),
      of_floor_cpu_min: Number(Math.min(...cpuRatios).toFixed(3)),
    }),
  );
}

await main();
