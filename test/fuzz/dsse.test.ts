import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { dsse } from '@sigstore/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyEnvelope } from '../../src/verify/envelope.js';
import type { VerifiedAttestation } from '../../src/verify/types.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import { jsonPaths, replaceAt } from './cases.js';
import { mutation } from './mutate.js';

/**
 * DSSE's pre-authentication encoding, the bytes every DSSE signature covers (bare envelopes,
 * envelope.ts; bundles, content.ts), checked against its definition in the DSSE spec
 * (envelope.md, "Signature definition"):
 *
 *   PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body
 *
 * with LEN the byte length as ASCII decimal without leading zeros and type UTF-8 encoded. The
 * lengths make it injective: no two (type, body) pairs share an encoding, so a signature over
 * one never verifies another. Then bare envelopes, signed here, changed every way.
 */

function specPAE(type: string, body: Uint8Array): Buffer {
  const t = Buffer.from(type, 'utf8');
  const ascii = (s: string) => Buffer.from(s, 'ascii');
  return Buffer.concat([
    ascii('DSSEv1 '),
    ascii(String(t.length)),
    ascii(' '),
    t,
    ascii(' '),
    ascii(String(body.length)),
    ascii(' '),
    Buffer.from(body),
  ]);
}

/** The spec's encoding read back: the one (type bytes, body) it can encode, or null. */
function decodePAE(pae: Buffer): { type: Buffer; body: Buffer } | null {
  const prefix = Buffer.from('DSSEv1 ');
  if (!pae.subarray(0, prefix.length).equals(prefix)) return null;
  let at = prefix.length;
  const len = (): number | null => {
    const sp = pae.indexOf(0x20, at);
    if (sp < 0) return null;
    const digits = pae.subarray(at, sp).toString('latin1');
    if (!/^(?:0|[1-9][0-9]*)$/.test(digits)) return null;
    at = sp + 1;
    return Number(digits);
  };
  const tl = len();
  if (tl === null || at + tl >= pae.length || pae[at + tl] !== 0x20) return null;
  const type = pae.subarray(at, at + tl);
  at += tl + 1;
  const bl = len();
  if (bl === null || at + bl !== pae.length) return null;
  return { type, body: pae.subarray(at) };
}

const N = runs();
const anyType = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('application/vnd.in-toto+json', '', ' ', '1 ', 'DSSEv1 0  0 '),
);
const anyBody = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.string().map((s) => Buffer.from(s)),
  fc.constantFrom(Buffer.from(' 0 '), Buffer.from('')),
);

describe('dsse pre-authentication encoding', () => {
  it(
    'is the spec definition, byte for byte, and reads back to its type and body',
    async () => {
      await checkProperty(
        'dsse.pae-spec',
        fc.property(anyType, anyBody, (type, body) => {
          const pae = dsse.preAuthEncoding(type, Buffer.from(body));
          expect(pae.equals(specPAE(type, body))).toBe(true);
          const back = decodePAE(pae);
          expect(back).not.toBeNull();
          expect(back!.type.equals(Buffer.from(type, 'utf8'))).toBe(true);
          expect(back!.body.equals(Buffer.from(body))).toBe(true);
        }),
        { numRuns: N * 5 },
      );
    },
    timeoutFor(N * 5, 1),
  );

  it(
    'is injective: different (type, body) pairs never share an encoding',
    async () => {
      // random pairs, and the pairs an ambiguous encoding would confuse: bytes moved across the
      // boundary between type and body, lengths written into the type
      const moved = fc
        .tuple(fc.string(), fc.uint8Array({ maxLength: 40 }), fc.nat())
        .map(([type, body, k]): [[string, Buffer], [string, Buffer]] => {
          const whole = Buffer.concat([Buffer.from(type), Buffer.from(` ${body.length} `), body]);
          const cut = k % (whole.length + 1);
          return [
            [type, Buffer.from(body)],
            [whole.subarray(0, cut).toString('latin1'), whole.subarray(cut)],
          ];
        });
      const pairs = fc.oneof(
        fc.tuple(fc.tuple(anyType, anyBody), fc.tuple(anyType, anyBody)),
        moved,
      );
      await checkProperty(
        'dsse.pae-injective',
        fc.property(pairs, ([[t1, b1], [t2, b2]]) => {
          const same =
            Buffer.from(t1, 'utf8').equals(Buffer.from(t2, 'utf8')) &&
            Buffer.from(b1).equals(Buffer.from(b2));
          const p1 = dsse.preAuthEncoding(t1, Buffer.from(b1));
          const p2 = dsse.preAuthEncoding(t2, Buffer.from(b2));
          expect(p1.equals(p2)).toBe(same);
        }),
        { numRuns: N * 5 },
      );
    },
    timeoutFor(N * 5, 1),
  );
});

// A bare envelope over an in-toto statement, signed with a key the gate trusts.
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEYS = [{ pem: publicKey.export({ format: 'pem', type: 'spki' }).toString() }];
const HEX = createHash('sha256').update('fuzzed artifact').digest('hex');
const SUBJECT = { digest: { algorithm: 'sha256' as const, hex: HEX } };
const TYPE = 'application/vnd.in-toto+json';
const PAYLOAD = Buffer.from(
  JSON.stringify({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app', digest: { sha256: HEX } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: { buildDefinition: { buildType: 'x' }, runDetails: { builder: { id: 'y' } } },
  }),
);
const signed = (type: string, payload: Buffer) =>
  sign('sha256', dsse.preAuthEncoding(type, payload), privateKey).toString('base64');
const ENVELOPE = {
  payloadType: TYPE,
  payload: PAYLOAD.toString('base64'),
  signatures: [{ keyid: '', sig: signed(TYPE, PAYLOAD) }],
};
const verify = (input: unknown) =>
  verifyEnvelope(Buffer.isBuffer(input) ? input : Buffer.from(JSON.stringify(input)), {
    keys: KEYS,
    subject: SUBJECT,
  });
const ORIGINAL = verify(ENVELOPE);

function sameOrRejected(input: unknown): void {
  const r = coded(() => verify(input));
  if (!r.ok) return;
  const v: VerifiedAttestation = r.value;
  expect(v.signer).toEqual(ORIGINAL.signer);
  expect(v.payloadType).toBe(TYPE);
  expect(v.payload!.equals(PAYLOAD)).toBe(true);
  expect(v.matchedSubject).toEqual(ORIGINAL.matchedSubject);
}

describe('bare dsse envelopes', () => {
  it('the envelope signed here verifies', () => {
    expect(ORIGINAL.signer.kind).toBe('key');
    expect(ORIGINAL.predicateType).toBe('https://slsa.dev/provenance/v1');
  });

  it(
    'any field changed, removed, retyped or nested: rejected with a code or the same statement',
    async () => {
      await checkProperty(
        'dsse.envelope-field',
        fc.property(fc.constantFrom(...jsonPaths(ENVELOPE)), mutation, (p, m) => {
          sameOrRejected(replaceAt(ENVELOPE, p, m));
        }),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 3),
  );

  it(
    'bytes moved between payload type and payload, under the original signature, are rejected',
    async () => {
      await checkProperty(
        'dsse.envelope-boundary',
        fc.property(
          fc.integer({ min: -20, max: 20 }).filter((k) => k !== 0),
          (k) => {
            // the same concatenation of type and payload, split elsewhere
            const whole = Buffer.concat([Buffer.from(TYPE), PAYLOAD]);
            const cut = Buffer.byteLength(TYPE) + k;
            const env = {
              ...ENVELOPE,
              payloadType: whole.subarray(0, cut).toString('latin1'),
              payload: whole.subarray(cut).toString('base64'),
            };
            expect(coded(() => verify(env)).ok).toBe(false);
          },
        ),
        { numRuns: Math.min(N, 40) },
      );
    },
    timeoutFor(N, 3),
  );

  it('a type signed with the replacement character is not another type written as a lone surrogate', () => {
    // U+D800 alone encodes to the same UTF-8 bytes as U+FFFD: the signature verifies, the type
    // the envelope names is not the in-toto type, so it is refused whatever it says
    const type = `${TYPE}\uFFFD`;
    const env = {
      ...ENVELOPE,
      payloadType: `${TYPE}\uD800`,
      signatures: [{ sig: signed(type, PAYLOAD) }],
    };
    const r = coded(() => verify(env));
    expect(r).toEqual({ ok: false, code: 'DSSE_PAYLOAD_TYPE' });
  });

  it(
    'any json value, and any bytes, are rejected with a code',
    async () => {
      await checkProperty(
        'dsse.envelope-arbitrary',
        fc.property(
          fc.oneof(
            fc.jsonValue(),
            fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
            fc.record({
              payloadType: fc.string(),
              payload: fc.base64String(),
              signatures: fc.array(fc.record({ sig: fc.base64String(), keyid: fc.string() })),
            }),
          ),
          (v) => {
            expect(coded(() => verify(v)).ok).toBe(false);
          },
        ),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 3),
  );
});
