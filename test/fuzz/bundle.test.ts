import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VerifiedBundle } from '../../src/verify/types.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import {
  BUNDLE_CASES,
  PROOF_CASES,
  jsonPaths,
  replaceAt,
  sameOrFewerClaims,
  tlogEntries,
  type BundleCase,
} from './cases.js';
import { flipBase64, mutation } from './mutate.js';

/**
 * Bundles, their checkpoint notes and their Merkle inclusion proofs, from valid
 * sigstore-conformance bundles (message signatures, DSSE, keyless and key, Rekor v1 and v2):
 * every change either is rejected with a coded GateError or verifies as exactly what was signed,
 * by the same signer, in the same log entries. Changes to what the log vouches for are rejected.
 */

/** What a verified bundle says: a changed bundle that still verifies must say the same. */
function claims(v: VerifiedBundle) {
  return {
    contentType: v.contentType,
    signer: v.signer,
    logEntries: v.logEntries,
    timestamps: v.timestamps,
    timeSource: v.timeSource,
    tlog: v.tlog,
    trustRoot: v.trustRoot,
    payloadType: v.payloadType,
    payload: v.payload?.toString('base64'),
  };
}

const originals = new Map(BUNDLE_CASES.map((c) => [c.name, claims(c.verify(c.bytes))]));

/** Rejected (with a code), or verified as exactly what the unchanged bundle says. */
function sameOrRejected(c: BundleCase, input: unknown): 'verified' | 'rejected' {
  const r = coded(() => c.verify(input));
  if (!r.ok) return 'rejected';
  // Unsigned material may be dropped (a timestamp beside the log's time, a proof beside the
  // promise): what is left must be the original's; everything else must be the same.
  const { timestamps, timeSource, tlog, logEntries, ...rest } = claims(r.value);
  const original = originals.get(c.name)!;
  const {
    timestamps: before,
    timeSource: _was,
    tlog: was,
    logEntries: entries,
    ...expected
  } = original;
  expect(rest).toEqual(expected);
  expect(sameOrFewerClaims(logEntries as never, entries as never), JSON.stringify(logEntries)).toBe(
    true,
  );
  // an inclusion proof dropped from an entry with a promise: less is claimed, and said so
  if (tlog !== was) expect([was, tlog]).toEqual(['inclusion-proof', 'inclusion-promise']);
  expect(timestamps.length).toBeGreaterThan(0);
  for (const t of timestamps) expect(before).toContainEqual(t);
  expect(timeSource).toBe(
    timestamps.some((t) => t.source === 'transparency-log')
      ? 'transparency-log'
      : 'timestamp-authority',
  );
  return 'verified';
}

function rejected(c: BundleCase, input: unknown): void {
  const r = coded(() => c.verify(input));
  expect(r.ok, `${c.name}: a changed log entry verified`).toBe(false);
}

const anyCase = fc.constantFrom(...BUNDLE_CASES);
const proofCase = fc.constantFrom(...PROOF_CASES);
const N = runs();

describe('bundles', () => {
  it('every seed verifies unchanged', () => {
    for (const c of BUNDLE_CASES) expect(sameOrRejected(c, c.bytes), c.name).toBe('verified');
    expect(PROOF_CASES.length).toBeGreaterThanOrEqual(4);
  });

  it(
    'any field changed, removed, retyped or nested: rejected with a code or the same claims',
    async () => {
      await checkProperty(
        'bundle.field-mutation',
        fc.property(
          anyCase.chain((c) => fc.tuple(fc.constant(c), fc.constantFrom(...jsonPaths(c.json)))),
          mutation,
          ([c, p], m) => {
            sameOrRejected(c, replaceAt(c.json, p, m));
          },
        ),
        { numRuns: N * 4 },
      );
    },
    timeoutFor(N * 4, 5),
  );

  it(
    'any bytes changed, cut or inserted: rejected with a code or the same claims',
    async () => {
      await checkProperty(
        'bundle.byte-mutation',
        fc.property(
          anyCase,
          fc.nat(),
          fc.oneof(
            fc.integer({ min: 1, max: 255 }).map((x) => ({ xor: x })),
            fc.constant({ cut: true }),
            fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => ({ insert: b })),
          ),
          (c, at, edit) => {
            const i = at % c.bytes.length;
            let bytes: Buffer;
            if ('xor' in edit) {
              bytes = Buffer.from(c.bytes);
              bytes[i] = bytes[i]! ^ edit.xor;
            } else if ('cut' in edit) {
              bytes = c.bytes.subarray(0, i);
            } else {
              bytes = Buffer.concat([c.bytes.subarray(0, i), edit.insert, c.bytes.subarray(i)]);
            }
            sameOrRejected(c, bytes);
          },
        ),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 5),
  );

  it(
    'any json value, as a value or as text, is rejected with a code',
    async () => {
      await checkProperty(
        'bundle.arbitrary-json',
        fc.property(anyCase, fc.jsonValue(), fc.boolean(), (c, v, asText) => {
          const r = coded(() => c.verify(asText ? JSON.stringify(v) : v));
          expect(r.ok).toBe(false);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 5),
  );
});

/** The checkpoint note of a bundle's log entry: `origin\nsize\nroot\n[extra]\n\n— name sig\n...` */
function checkpointOf(c: BundleCase, entry: number): string {
  return tlogEntries(c.json)[entry]!.inclusionProof.checkpoint.envelope as string;
}

function withCheckpoint(c: BundleCase, entry: number, note: string) {
  return replaceAt(
    c.json,
    ['verificationMaterial', 'tlogEntries', entry, 'inclusionProof', 'checkpoint', 'envelope'],
    () => note,
  );
}

const proofEntry = proofCase.chain((c) =>
  fc.tuple(
    fc.constant(c),
    fc.constantFrom(
      ...tlogEntries(c.json)
        .map((e, i) => (e.inclusionProof ? i : -1))
        .filter((i) => i >= 0),
    ),
  ),
);

/** Edits of what the log signed: its origin, size, root hash, or every signature of it. */
const signedNoteEdit = fc.oneof(
  fc.record({ line: fc.constantFrom(0, 1, 2), edit: fc.constantFrom('append', 'bump', 'flip') }),
  fc.record({ signatures: fc.integer({ min: 1, max: 255 }) }),
);

type NoteEdit = typeof signedNoteEdit extends fc.Arbitrary<infer T> ? T : never;

function editNote(note: string, e: NoteEdit): string {
  const split = note.indexOf('\n\n');
  const body = note.slice(0, split).split('\n');
  const sigs = note.slice(split + 2);
  if ('signatures' in e) {
    const flipped = sigs.replace(
      /^(\u2014 \S+ )(\S+)$/gmu,
      (_m, head: string, sig: string) => head + flipBase64(sig, 7, e.signatures),
    );
    return `${body.join('\n')}\n\n${flipped}`;
  }
  const line = body[e.line]!;
  body[e.line] =
    e.edit === 'append'
      ? `${line}0`
      : e.edit === 'bump' && /^\d+$/.test(line)
        ? String(BigInt(line) + 1n)
        : e.line === 2
          ? flipBase64(line, 3, 1)
          : `${line}x`;
  return `${body.join('\n')}\n\n${sigs}`;
}

describe('checkpoint notes', () => {
  it(
    'a change to the signed note or to every signature of it is rejected',
    async () => {
      await checkProperty(
        'checkpoint.signed-note',
        fc.property(proofEntry, signedNoteEdit, ([c, i], e) => {
          const note = checkpointOf(c, i);
          const edited = editNote(note, e);
          expect(edited).not.toBe(note);
          rejected(c, withCheckpoint(c, i, edited));
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 5),
  );

  it(
    'any text edit of the note: rejected with a code or the same claims',
    async () => {
      await checkProperty(
        'checkpoint.text-edit',
        fc.property(
          proofEntry,
          fc.nat(),
          fc.nat({ max: 4 }),
          fc.string({
            maxLength: 6,
            unit: fc.constantFrom('\n', ' ', '\u2014', 'a', '0', '+', '='),
          }),
          ([c, i], at, cut, insert) => {
            const note = checkpointOf(c, i);
            const k = at % (note.length + 1);
            sameOrRejected(
              c,
              withCheckpoint(c, i, note.slice(0, k) + insert + note.slice(k + cut)),
            );
          },
        ),
        { numRuns: N },
      );
    },
    timeoutFor(N, 5),
  );
});

/** A change to one of the numbers and hashes a Merkle inclusion proof binds. */
const proofEdit = fc.oneof(
  fc.record({
    field: fc.constantFrom('logIndex', 'proofIndex', 'treeSize'),
    by: fc.bigInt({ min: -3n, max: 3n }).filter((b) => b !== 0n),
  }),
  fc.record({
    field: fc.constantFrom('rootHash', 'hash', 'logId'),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    field: fc.constant('hashes'),
    op: fc.constantFrom('drop', 'duplicate', 'append', 'reverse'),
    at: fc.nat(),
  }),
);

function editProof(entry: Record<string, any>, e: any): boolean {
  const p = entry.inclusionProof;
  const bump = (s: string) => String(BigInt(s) + e.by);
  switch (e.field) {
    case 'logIndex':
      entry.logIndex = bump(entry.logIndex);
      return true;
    case 'proofIndex':
      p.logIndex = bump(p.logIndex);
      return true;
    case 'treeSize':
      p.treeSize = bump(p.treeSize);
      return true;
    case 'rootHash':
      p.rootHash = flipBase64(p.rootHash, e.at, e.xor);
      return true;
    case 'logId':
      entry.logId.keyId = flipBase64(entry.logId.keyId, e.at, e.xor);
      return true;
    case 'hash':
      if (p.hashes.length === 0) return false;
      p.hashes[e.at % p.hashes.length] = flipBase64(p.hashes[e.at % p.hashes.length], e.at, e.xor);
      return true;
    default: {
      const h: string[] = p.hashes;
      if (e.op === 'append') h.push(Buffer.alloc(32, e.at % 256).toString('base64'));
      else if (h.length === 0) return false;
      else if (e.op === 'drop') h.splice(e.at % h.length, 1);
      else if (e.op === 'duplicate') h.splice(e.at % h.length, 0, h[e.at % h.length]!);
      else if (new Set(h).size < 2) return false;
      else h.reverse();
      return true;
    }
  }
}

describe('merkle inclusion proofs in bundles', () => {
  it(
    'any change to the log index, the tree size, the root, a hash or the log id is rejected',
    async () => {
      await checkProperty(
        'merkle.bundle-proof',
        fc.property(proofEntry, proofEdit, ([c, i], e) => {
          const json = structuredClone(c.json);
          fc.pre(editProof(tlogEntries(json)[i]!, e));
          rejected(c, json);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 5),
  );
});
