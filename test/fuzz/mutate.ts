import fc from 'fast-check';

/** A change to one value of a JSON document: its type, its content, its nesting, or its absence. */
export type Mutation = (old: unknown) => unknown;

const nested = (depth: number, inner: unknown): unknown => {
  let v = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

/** Flips bits of one byte of a base64 string's decoded bytes (the string stays base64). */
export function flipBase64(b64: string, at: number, xor: number): string {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) return 'AA==';
  const i = at % bytes.length;
  bytes[i] = bytes[i]! ^ xor;
  return bytes.toString('base64');
}

const stringEdit: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(
    ([at, xor]): Mutation =>
      (old) =>
        typeof old === 'string' && /^[A-Za-z0-9+/]+=*$/.test(old) && old.length >= 4
          ? flipBase64(old, at, xor)
          : old,
  ),
  fc
    .tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 3 }))
    .map(([at, s]): Mutation => (old) => {
      const t = String(old);
      const i = at % (t.length + 1);
      return t.slice(0, i) + s + t.slice(i + 1);
    }),
  fc.nat().map(
    (n): Mutation =>
      (old) =>
        String(old).slice(0, n % (String(old).length + 1)),
  ),
  fc.constantFrom<Mutation>(
    (old) => (typeof old === 'string' && /^-?\d+$/.test(old) ? String(BigInt(old) + 1n) : old),
    (old) => (typeof old === 'string' && /^-?\d+$/.test(old) ? String(BigInt(old) - 1n) : old),
    (old) => (typeof old === 'string' && /^\d+$/.test(old) ? `-${old}` : old),
    (old) => (typeof old === 'string' ? old.toUpperCase() : old),
    (old) => (typeof old === 'string' ? ` ${old}` : old),
    (old) => (typeof old === 'string' ? `${old}\n` : old),
  ),
);

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: stringEdit, weight: 4 },
  {
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map(
      (v): Mutation =>
        () =>
          v,
    ),
    weight: 2,
  },
  {
    arbitrary: fc.constantFrom<Mutation>(
      () => undefined,
      () => null,
      () => '',
      () => 0,
      () => -1,
      () => 1e308,
      () => '18446744073709551617',
      () => true,
      () => [],
      () => ({}),
      (old) => [old],
      (old) => [old, old],
      (old) => ({ value: old }),
      (old) => JSON.stringify(old),
      (old) => (typeof old === 'string' ? Number(old) : String(old)),
      (old) => nested(2_000, old),
      () => 'x'.repeat(100_000),
    ),
    weight: 2,
  },
);
