/**
 * OPA builtins the gate provides to WebAssembly policies in JavaScript.
 *
 * `opa build -t wasm` compiles only some builtins into the module; every other builtin a policy
 * calls is imported from the host, and @open-policy-agent/opa-wasm implements only a handful
 * (sprintf, json.is_valid, regex.split, yaml.*). These are the pure ones the default library
 * needs, implemented with the semantics of OPA v1.22.2's Go implementations (topdown/time.go,
 * topdown/semver.go, internal/semver, Go's time.Parse), so that `opa eval`, `opa test` and the
 * gate agree on every input (test/evaluate/builtins.test.ts holds values taken from `opa eval`).
 *
 * Nothing here reads a clock, the network or randomness: decisions must replay. Errors follow
 * OPA's default (strict-builtin-errors off): where OPA's builtin raises an error, the call is
 * undefined. A host builtin returning `undefined` is exactly that in opa-wasm (the compiled call
 * sees a null value and the expression is undefined); throwing would abort the whole evaluation.
 *
 * opa-wasm passes arguments as parsed JSON and JSON.stringify's what a builtin returns, unless it
 * is an ArrayBuffer, which is taken as JSON text: exact int64 nanoseconds are returned that way.
 */

/** A host builtin: JSON values in, a JSON value (or JSON text as an ArrayBuffer) or undefined out. */
export type HostBuiltin = (...args: unknown[]) => unknown;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// time.parse_rfc3339_ns ----------------------------------------------------------------------

/**
 * `time.parse_rfc3339_ns(value)`: nanoseconds since the Unix epoch, or undefined where OPA
 * raises an error (not a string, not parsable, or outside the int64 nanosecond range, i.e.
 * before 1677-09-21T00:12:43.145224192Z or after 2262-04-11T23:47:16.854775807Z).
 *
 * OPA calls Go's `time.Parse(time.RFC3339, value)`, which is more lenient than RFC 3339, and
 * this accepts exactly what it accepts: a four-digit year; two-digit month, day, minute and
 * second; a one- or two-digit hour (0-23); seconds 0-59 (no leap second); an optional fraction
 * after `.` or `,` of any length (digits beyond the ninth are dropped, not rounded); then `Z`
 * (upper case only) or `+hh:mm` / `-hh:mm` with hh at most 24 and mm at most 60; an upper-case
 * `T` separator and nothing else.
 */
export function parseRfc3339Ns(value: unknown): bigint | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value;
  let i = 0;
  const digit = (k: number) => {
    const c = s.charCodeAt(k);
    return c >= 48 && c <= 57 ? c - 48 : -1;
  };
  const literal = (ch: string) => {
    if (s[i] !== ch) return false;
    i++;
    return true;
  };
  /** Go's getnum: one or two digits; two when fixed. */
  const getnum = (fixed: boolean): number => {
    const a = digit(i);
    if (a < 0) return -1;
    const b = digit(i + 1);
    if (b < 0) {
      if (fixed) return -1;
      i += 1;
      return a;
    }
    i += 2;
    return a * 10 + b;
  };

  // year: four characters, the first a digit, all digits (Go's atoi of value[0:4])
  if (s.length < 4) return undefined;
  let year = 0;
  for (let k = 0; k < 4; k++) {
    const d = digit(k);
    if (d < 0) return undefined;
    year = year * 10 + d;
  }
  i = 4;
  if (!literal('-')) return undefined;
  const month = getnum(true);
  if (month < 1 || month > 12) return undefined;
  if (!literal('-')) return undefined;
  const day = getnum(true);
  if (day < 0) return undefined;
  if (!literal('T')) return undefined;
  const hour = getnum(false);
  if (hour < 0 || hour > 23) return undefined;
  if (!literal(':')) return undefined;
  const minute = getnum(true);
  if (minute < 0 || minute > 59) return undefined;
  if (!literal(':')) return undefined;
  const second = getnum(true);
  if (second < 0 || second > 59) return undefined;

  // a fraction the layout does not mention: '.' or ',' then at least one digit
  let nanos = 0;
  if ((s[i] === '.' || s[i] === ',') && digit(i + 1) >= 0) {
    let n = i + 1;
    while (digit(n) >= 0) n++;
    nanos = Number(s.slice(i + 1, Math.min(n, i + 10)).padEnd(9, '0'));
    i = n;
  }

  // zone: "Z", or a sign, two digits, ':', two digits
  let offsetSeconds = 0;
  if (s[i] === 'Z') {
    i++;
  } else {
    if (s.length - i < 6 || s[i + 3] !== ':') return undefined;
    const sign = s[i];
    const h1 = digit(i + 1);
    const h2 = digit(i + 2);
    const m1 = digit(i + 4);
    const m2 = digit(i + 5);
    if (h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0) return undefined;
    const hours = h1 * 10 + h2;
    const minutes = m1 * 10 + m2;
    if (hours > 24 || minutes > 60) return undefined;
    if (sign !== '+' && sign !== '-') return undefined;
    offsetSeconds = (hours * 60 + minutes) * 60 * (sign === '-' ? -1 : 1);
    i += 6;
  }
  if (i !== s.length) return undefined;
  if (day < 1 || day > daysIn(month, year)) return undefined;

  const seconds =
    daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds;
  const ns = BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
  if (ns < INT64_MIN || ns > INT64_MAX) return undefined;
  return ns;
}

function leap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

function daysIn(month: number, year: number): number {
  if (month === 2) return leap(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * JSON text for opa-wasm, which copies an ArrayBuffer result into the module's memory at once
 * (`_loadJSON`) and never keeps it: constants are allocated once, and an integer is written into
 * a scratch buffer of its length (allocating and encoding a fresh buffer costs more than the
 * parse itself).
 */
function jsonText(text: string): ArrayBuffer {
  const buffer = new ArrayBuffer(text.length);
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return buffer;
}

const scratch = new Map<number, Uint8Array>();

/** An exact integer as JSON text, which opa-wasm loads without going through a double. */
function jsonInteger(n: bigint): ArrayBuffer {
  const text = n.toString();
  let bytes = scratch.get(text.length);
  if (bytes === undefined) {
    bytes = new Uint8Array(text.length);
    scratch.set(text.length, bytes);
  }
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes.buffer as ArrayBuffer;
}

const TRUE = jsonText('true');
const FALSE = jsonText('false');
const ORDER = { '-1': jsonText('-1'), '0': jsonText('0'), '1': jsonText('1') } as const;

// semver.* -----------------------------------------------------------------------------------

/** A parsed Semantic Version (OPA's internal/semver.Version; build metadata is not kept). */
export interface SemVer {
  major: bigint;
  minor: bigint;
  patch: bigint;
  preRelease: string;
}

const META_IDENTIFIERS = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/;

/**
 * OPA's semver.Parse: an optional leading `v`, MAJOR.MINOR.PATCH (int64, no sign, no leading
 * zero), an optional `-` pre-release and `+` build metadata (dot-separated non-empty
 * identifiers of `[0-9A-Za-z-]`; numeric pre-release identifiers without leading zeros).
 */
export function parseSemver(version: string): SemVer | undefined {
  let v = version.startsWith('v') ? version.slice(1) : version;
  const plus = v.indexOf('+');
  if (plus >= 0) {
    if (!META_IDENTIFIERS.test(v.slice(plus + 1))) return undefined;
    v = v.slice(0, plus);
  }
  let preRelease = '';
  const dash = v.indexOf('-');
  if (dash >= 0) {
    preRelease = v.slice(dash + 1);
    if (!META_IDENTIFIERS.test(preRelease) || !validPreRelease(preRelease)) return undefined;
    v = v.slice(0, dash);
  }
  const parts = v.split('.');
  if (parts.length !== 3) return undefined;
  const [major, minor, patch] = parts.map(parseNumeric);
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  return { major, minor, patch, preRelease };
}

function parseNumeric(s: string): bigint | undefined {
  if (!/^[0-9]+$/.test(s) || (s.length > 1 && s[0] === '0')) return undefined;
  const n = BigInt(s);
  return n > INT64_MAX ? undefined : n;
}

function validPreRelease(pre: string): boolean {
  return pre.split('.').every((id) => !(id.length > 1 && id[0] === '0' && isAllDecimals(id)));
}

function isAllDecimals(s: string): boolean {
  return /^[0-9]+$/.test(s);
}

/** Go's strconv.Atoi of an all-digit identifier: out-of-range values clamp to MaxInt64. */
function atoiClamped(s: string): bigint {
  const n = BigInt(s);
  return n > INT64_MAX ? INT64_MAX : n;
}

function cutDot(s: string): [string, string] {
  const i = s.indexOf('.');
  return i >= 0 ? [s.slice(0, i), s.slice(i + 1)] : [s, ''];
}

function sign(a: bigint, b: bigint): -1 | 0 | 1 {
  return a > b ? 1 : a < b ? -1 : 0;
}

/** OPA's Version.Compare: Semantic Versioning 2.0.0 precedence, build metadata ignored. */
export function compareSemver(v: SemVer, o: SemVer): -1 | 0 | 1 {
  const core = sign(v.major, o.major) || sign(v.minor, o.minor) || sign(v.patch, o.patch);
  if (core !== 0) return core;
  if (v.preRelease === o.preRelease) return 0;
  if (v.preRelease === '') return 1;
  if (o.preRelease === '') return -1;
  let [a, afterA] = cutDot(v.preRelease);
  let [b, afterB] = cutDot(o.preRelease);
  for (;;) {
    if (a === '' && b !== '') return -1;
    if (a !== '' && b === '') return 1;
    if (a === '' && b === '') return 0; // unreachable for valid versions; never loop forever
    const aIsInt = isAllDecimals(a);
    const bIsInt = isAllDecimals(b);
    if (aIsInt && !bIsInt) return -1;
    if (!aIsInt && bIsInt) return 1;
    if (aIsInt && bIsInt) {
      const c = sign(atoiClamped(a), atoiClamped(b));
      if (c !== 0) return c;
    } else if (a !== b) {
      return a > b ? 1 : -1;
    }
    if (afterA !== '' && afterB === '') return 1;
    if (afterA === '' && afterB !== '') return -1;
    [a, afterA] = cutDot(afterA);
    [b, afterB] = cutDot(afterB);
  }
}

/** `semver.is_valid(vsn)`: true for a string OPA's semver.Parse accepts, false for anything else. */
export function semverIsValid(vsn: unknown): boolean {
  return typeof vsn === 'string' && parseSemver(vsn) !== undefined;
}

/** `semver.compare(a, b)`: -1, 0 or 1; undefined (OPA: an error) unless both are valid versions. */
export function semverCompare(a: unknown, b: unknown): -1 | 0 | 1 | undefined {
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  const va = parseSemver(a);
  const vb = parseSemver(b);
  if (va === undefined || vb === undefined) return undefined;
  return compareSemver(va, vb);
}

// The table ----------------------------------------------------------------------------------

/**
 * Host builtins by OPA name, for opa-wasm's `loadPolicy(wasm, memory, customBuiltins)`. A policy
 * may call these besides the builtins compiled into WebAssembly (docs/policies.md).
 */
export const GATE_BUILTINS: Readonly<Record<string, HostBuiltin>> = Object.freeze({
  'time.parse_rfc3339_ns': (value: unknown) => {
    const ns = parseRfc3339Ns(value);
    return ns === undefined ? undefined : jsonInteger(ns);
  },
  'semver.is_valid': (vsn: unknown) => (semverIsValid(vsn) ? TRUE : FALSE),
  'semver.compare': (a: unknown, b: unknown) => {
    const c = semverCompare(a, b);
    return c === undefined ? undefined : ORDER[c];
  },
});
