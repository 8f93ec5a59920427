import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadTrustedRoot, type Trust } from '../../src/verify/trust.js';
import type { VerifiedBundle } from '../../src/verify/types.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { FIXTURES } from '../helpers.js';

/** Valid sigstore-conformance bundles, each with what verifies it: the seeds of mutation. */
const SUITE = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
const ARTIFACT = readFileSync(path.join(SUITE, 'a.txt'));
const IDENTITY = {
  san: 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
  issuer: 'https://token.actions.githubusercontent.com',
};

export interface BundleCase {
  name: string;
  /** short, for fast-check's counterexamples */
  toString(): string;
  bytes: Buffer;
  json: Record<string, unknown>;
  verify(input: unknown): VerifiedBundle;
}

const publicGood = loadTrustedRoot();

function bundleCase(name: string): BundleCase {
  const dir = path.join(SUITE, name);
  const file = (f: string) => path.join(dir, f);
  const trust: Trust = existsSync(file('trusted_root.json'))
    ? loadTrustedRoot(file('trusted_root.json'))
    : publicGood;
  const keys = existsSync(file('key.pub')) ? [{ pem: readFileSync(file('key.pub'), 'utf8') }] : [];
  const bytes = readFileSync(file('bundle.sigstore.json'));
  const verify = (input: unknown) =>
    verifyBundle(input, {
      trust,
      artifact: { bytes: ARTIFACT },
      ...(keys.length ? { keys } : { identities: [IDENTITY] }),
    });
  return {
    name,
    bytes,
    json: JSON.parse(bytes.toString('utf8')),
    verify,
    toString: () => name,
  };
}

export const BUNDLE_CASES: BundleCase[] = [
  'happy-path-v0.1',
  'happy-path-v0.2',
  'happy-path-v0.3',
  'happy-path-intoto-in-dsse-v3',
  'managed-key-happy-path',
  'rekor2-happy-path',
  'rekor2-dsse-happy-path',
  'rekor2-checkpoint-cosigned',
].map(bundleCase);

/** The cases whose log entries carry a Merkle inclusion proof and a signed checkpoint. */
export const PROOF_CASES = BUNDLE_CASES.filter((c) =>
  tlogEntries(c.json).some((e) => e.inclusionProof !== undefined),
);

export function tlogEntries(json: Record<string, unknown>): Array<Record<string, any>> {
  const vm = json.verificationMaterial as { tlogEntries?: Array<Record<string, any>> };
  return vm.tlogEntries ?? [];
}

/** Every path to a value inside a JSON document (the root excluded). */
export function jsonPaths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [at];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [at, ...keys.flatMap((k) => jsonPaths((v as any)[k], [...at, k]))].filter(
    (p) => p.length > 0,
  );
}

/** A copy of `doc` with the value at `p` replaced by `fn(old)`, or removed when fn gives undefined. */
export function replaceAt<T>(doc: T, p: (string | number)[], fn: (old: unknown) => unknown): T {
  const copy = structuredClone(doc) as any;
  let node = copy;
  for (const k of p.slice(0, -1)) node = node[k];
  const last = p[p.length - 1]!;
  const next = fn(node[last]);
  if (next === undefined && !Array.isArray(node)) delete node[last];
  else node[last] = next;
  return copy;
}

type EntryRef = Record<string, unknown>;

/**
 * A changed bundle's log entries against the original's: the same entries, each saying nothing
 * the original did not (an entry may say less: an inclusion proof dropped beside its promise
 * takes what only the proof tells with it), and never another index, log, kind or version.
 */
export function sameOrFewerClaims(changed: EntryRef[], original: EntryRef[]): boolean {
  return (
    changed.length === original.length &&
    changed.every((e, i) => {
      const o = original[i]!;
      const core = ['logIndex', 'logId', 'kind', 'version'];
      return (
        core.every((k) => e[k] === o[k]) &&
        Object.keys(e).every((k) => JSON.stringify(e[k]) === JSON.stringify(o[k]))
      );
    })
  );
}
