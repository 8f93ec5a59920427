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

function ecdsaRate(ms: number): number {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = Buffer.from('the floor');
  const signature = sign('sha256', message, privateKey);
  for (let i = 0; i < 50; i++) verify('sha256', message, publicKey, signature);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    verify('sha256', message, publicKey, signature);
    n++;
  }
  return (n * 1000) / (performance.now() - start);
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
  // the crypto floor is measured between every chunk of bundles and each chunk is compared with
  // the floor measured around it; the median of those ratios is the figure.
  const CHUNK = 100;
  const ratios: number[] = [];
  const rates: number[] = [];
  let verifyMs = 0;
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const before = ecdsaRate(250);
    const t = performance.now();
    for (const b of chunk) verifyBundle(b, { trust, identities: 'any' });
    const ms = performance.now() - t;
    const after = ecdsaRate(250);
    verifyMs += ms;
    rates.push(before, after);
    ratios.push((chunk.length * 1000) / ms / ((before + after) / 2 / 12));
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
      of_floor_median: Number(median(ratios).toFixed(3)),
      of_floor_min: Number(Math.min(...ratios).toFixed(3)),
    }),
  );
}

await main();
