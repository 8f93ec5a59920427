import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { TransparencyLogEntry } from '@sigstore/bundle';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyInclusion } from '../../src/verify/checkpoint.js';
import { checkProperty, runs, timeoutFor } from './budget.js';

/**
 * Merkle inclusion proofs (RFC 6962) against signed checkpoints, over trees built here: the
 * function the verifier runs for every log entry with a proof (verifyInclusion, checkpoint.ts).
 * Every valid proof verifies, at every index of every size, the last leaf included
 * (index ^ (size - 1) == 0: no inner hashes, only the right border); any single change to the
 * index, the size, a hash, the root or the leaf fails.
 */

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leafHash = (d: Buffer) => sha256(Buffer.from([0]), d);
const nodeHash = (l: Buffer, r: Buffer) => sha256(Buffer.from([1]), l, r);

/** The largest power of two below n (n > 1). */
const split = (n: number) => 2 ** Math.floor(Math.log2(n - 1));

/** MTH(D[n]) of RFC 6962 section 2.1. */
function root(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leafHash(leaves[0]!);
  const k = split(leaves.length);
  return nodeHash(root(leaves.slice(0, k)), root(leaves.slice(k)));
}

/** PATH(m, D[n]) of RFC 6962 section 2.1.1: the audit path, leaf level first. */
function path(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...path(m, leaves.slice(0, k)), root(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), root(leaves.slice(0, k))];
}

// One log: an Ed25519 key, its log id (sha256 of the key), a checkpoint signer.
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const logID = sha256(publicKey.export({ format: 'der', type: 'spki' }));
const tlogs = [
  {
    logID,
    baseURL: 'https://log.fuzz.example',
    publicKey,
    validFor: { start: new Date(0), end: new Date(8.64e15) },
  },
];
const ORIGIN = 'log.fuzz.example - 1';

function checkpoint(size: bigint, rootHash: Buffer): string {
  const note = `${ORIGIN}\n${size}\n${rootHash.toString('base64')}\n`;
  const sig = sign(null, Buffer.from(note), privateKey);
  return `${note}\n\u2014 log.fuzz.example ${Buffer.concat([logID.subarray(0, 4), sig]).toString('base64')}\n`;
}

interface Proof {
  body: Buffer;
  index: bigint;
  size: bigint;
  root: Buffer;
  hashes: Buffer[];
  /** the checkpoint's size and root when they differ from the proof's (re-signed) */
  signedSize?: bigint;
  signedRoot?: Buffer;
}

function entry(p: Proof): TransparencyLogEntry {
  return {
    logIndex: String(p.index),
    logId: { keyId: logID },
    kindVersion: { kind: 'hashedrekord', version: '0.0.2' },
    integratedTime: '0',
    canonicalizedBody: p.body,
    inclusionProof: {
      logIndex: String(p.index),
      rootHash: p.root,
      treeSize: String(p.size),
      hashes: p.hashes,
      checkpoint: { envelope: checkpoint(p.signedSize ?? p.size, p.signedRoot ?? p.root) },
    },
  } as TransparencyLogEntry;
}

function verifies(p: Proof): boolean {
  try {
    verifyInclusion(entry(p), tlogs);
    return true;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).toBe('TLOG_INCLUSION_PROOF_ERROR');
    return false;
  }
}

/** A tree of 1 to 200 leaves and one index in it, the last leaf a third of the time. */
const tree = fc
  .array(fc.uint8Array({ minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 200 })
  .chain((leaves) =>
    fc.tuple(
      fc.constant(leaves.map((l) => Buffer.from(l))),
      fc.oneof(fc.nat(leaves.length - 1), fc.constant(leaves.length - 1)),
    ),
  );

function proofOf([leaves, m]: [Buffer[], number]): Proof {
  return {
    body: leaves[m]!,
    index: BigInt(m),
    size: BigInt(leaves.length),
    root: root(leaves),
    hashes: path(m, leaves),
  };
}

const flip = (b: Buffer, at: number, xor: number) => {
  const c = Buffer.from(b);
  if (c.length === 0) return Buffer.from([xor]);
  c[at % c.length] = c[at % c.length]! ^ xor;
  return c;
};

/** One change to a valid proof, never a no-op. */
const change = fc.oneof(
  fc.record({ kind: fc.constant('index' as const), to: fc.bigInt({ min: -2n, max: 260n }) }),
  fc.record({ kind: fc.constant('size' as const), to: fc.bigInt({ min: 0n, max: 260n }) }),
  fc.record({
    kind: fc.constantFrom('hash' as const, 'root' as const, 'leaf' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constantFrom('drop' as const, 'extra' as const, 'swap' as const),
    at: fc.nat(),
  }),
);

type Change = typeof change extends fc.Arbitrary<infer T> ? T : never;

/**
 * The log's own tree at another size: the leaves cut, or more appended. A log signs a checkpoint
 * for each size it reaches; a proof is checked against the size and root its checkpoint signs.
 */
function resized(leaves: Buffer[], size: number): Buffer[] {
  const more = Array.from({ length: Math.max(0, size - leaves.length) }, (_, i) =>
    Buffer.from(`appended ${i}`),
  );
  return [...leaves, ...more].slice(0, size);
}

function changed([leaves, m]: [Buffer[], number], c: Change): Proof | null {
  const p = proofOf([leaves, m]);
  switch (c.kind) {
    case 'index': {
      // the same body at the other index is no lie: it is there too
      const to = Number(c.to);
      if (c.to === p.index || leaves[to]?.equals(p.body)) return null;
      return { ...p, index: c.to };
    }
    case 'size': {
      // the log's checkpoint for another size of the same log, with the proof for this one
      if (c.to === p.size) return null;
      const other = root(resized(leaves, Number(c.to)));
      return { ...p, size: c.to, signedSize: c.to, root: other };
    }
    case 'root': {
      const r = flip(p.root, c.at, c.xor);
      return { ...p, root: r, signedRoot: r };
    }
    case 'leaf':
      return { ...p, body: flip(p.body, c.at, c.xor) };
    case 'hash':
      if (p.hashes.length === 0) return null;
      return {
        ...p,
        hashes: p.hashes.map((h, i) => (i === c.at % p.hashes.length ? flip(h, c.at, c.xor) : h)),
      };
    case 'drop':
      if (p.hashes.length === 0) return null;
      return { ...p, hashes: p.hashes.filter((_, i) => i !== c.at % p.hashes.length) };
    case 'extra':
      return { ...p, hashes: [...p.hashes, sha256(Buffer.from([c.at % 256]))] };
    default: {
      if (p.hashes.length < 2) return null;
      const i = c.at % (p.hashes.length - 1);
      const h = [...p.hashes];
      [h[i], h[i + 1]] = [h[i + 1]!, h[i]!];
      return h[i]!.equals(h[i + 1]!) ? null : { ...p, hashes: h };
    }
  }
}

const N = runs();

describe('merkle inclusion proofs', () => {
  it('the proofs built here match RFC 6962 on a known tree', () => {
    const leaves = [0, 1, 2, 3, 4, 5, 6].map((i) => Buffer.from([i]));
    const h = leaves.map(leafHash);
    // the last leaf of 7: index ^ (size - 1) == 0, its path is all border
    expect(path(6, leaves)).toEqual(
      [nodeHash(nodeHash(h[0]!, h[1]!), nodeHash(h[2]!, h[3]!)), nodeHash(h[4]!, h[5]!)].reverse(),
    );
    expect(verifies(proofOf([leaves, 6]))).toBe(true);
    expect(verifies(proofOf([[Buffer.from('only')], 0]))).toBe(true);
  });

  it(
    'every valid proof verifies, the last leaf included',
    async () => {
      await checkProperty(
        'merkle.valid-proof',
        fc.property(tree, (t) => {
          expect(verifies(proofOf(t))).toBe(true);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );

  it(
    'any single change to the index, the size, a hash, the root or the leaf fails',
    async () => {
      await checkProperty(
        'merkle.changed-proof',
        fc.property(tree, change, (t, c) => {
          const p = changed(t, c);
          fc.pre(p !== null);
          expect(verifies(p!)).toBe(false);
        }),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 20),
  );

  it(
    "a proof for one leaf never verifies another's body, at any index of the same tree",
    async () => {
      await checkProperty(
        'merkle.other-leaf',
        fc.property(
          tree.filter(([l]) => l.length > 1),
          fc.nat(),
          ([leaves, m], k) => {
            const other = k % leaves.length;
            fc.pre(!leaves[other]!.equals(leaves[m]!));
            expect(verifies({ ...proofOf([leaves, m]), body: leaves[other]! })).toBe(false);
          },
        ),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );
});
