/**
 * The JSON text of a value, made once: a decision's policy input (about 25 KB) is hashed for the
 * decision's digests, handed to the policy and recorded in the ledger, and serialising it costs
 * more than any of those. Only a value registered by `settledJson` is remembered, by a caller
 * that never changes it afterwards (the gate builds each decision's input once and only reads
 * it); any other object may change between two calls, so its text is made again each time.
 */
const texts = new WeakMap<object, string>();

/** Remembers the JSON text of `value`, which its owner no longer changes; returns the value. */
export function settledJson<T extends object>(value: T): T {
  texts.set(value, JSON.stringify(value));
  return value;
}

/** JSON.stringify(value), from memory when `settledJson` registered it. */
export function jsonText(value: object): string {
  return texts.get(value) ?? JSON.stringify(value);
}
