/** Helpers for negative fixtures: copy a valid bundle and change exactly one field. */

export type JsonPath = string | readonly (string | number)[];

const segments = (path: JsonPath): (string | number)[] =>
  typeof path === 'string'
    ? path.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s))
    : [...path];

/**
 * Deep-copies `doc` and replaces the value at `path` ("a.b.0.c" or ['a', 'b', 0, 'c']) with
 * fn(old). Returning undefined deletes the field. Throws if an intermediate step is missing, so
 * a typo cannot silently produce a fixture that fails for the wrong reason.
 */
export function mutate<T>(doc: T, path: JsonPath, fn: (old: unknown) => unknown): T {
  const copy = structuredClone(doc);
  const keys = segments(path);
  const last = keys.pop();
  if (last === undefined) throw new Error('mutate: empty path');
  let node: unknown = copy;
  for (const key of keys) {
    node = (node as Record<string | number, unknown> | null)?.[key];
    if (node === null || typeof node !== 'object') {
      throw new Error(`mutate: no object at ${String(key)} in ${keys.join('.')}`);
    }
  }
  const parent = node as Record<string | number, unknown>;
  const next = fn(parent[last]);
  if (next === undefined) {
    if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
    else delete parent[last];
  } else {
    parent[last] = next;
  }
  return copy;
}

/** Flips the low bit of one byte (default: the middle one) of base64 data. */
export function flipByte(b64: string, index?: number): string {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length === 0) throw new Error('flipByte: empty value');
  const i = index === undefined ? buf.length >> 1 : (index + buf.length) % buf.length;
  buf[i] = (buf[i] ?? 0) ^ 0x01;
  return buf.toString('base64');
}

/** Decodes base64 JSON (a DSSE payload, a canonicalized tlog body), edits it, re-encodes it. */
export function editBase64JSON(b64: string, fn: (value: unknown) => unknown): string {
  const value = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as unknown;
  return Buffer.from(JSON.stringify(fn(value)), 'utf8').toString('base64');
}
