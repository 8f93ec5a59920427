import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, normalise } from '../../src/config.js';
import {
  DEFAULT_TRUSTED_ROOT_PATH,
  loadTrustedRoot,
  trustFromJSON,
  type Trust,
} from '../../src/verify/trust.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { FIXTURES } from '../helpers.js';
import { checkProperty, coded, runs, timeoutFor } from './budget.js';
import { BUNDLE_CASES, jsonPaths, replaceAt } from './cases.js';
import { mutation } from './mutate.js';

/**
 * Configuration files and trusted roots: whatever they hold, loading gives a checked result or a
 * coded error (CONFIG_INVALID, TRUST_ROOT_INVALID, ...), never another exception; a trusted root
 * changed anywhere never makes a bundle verify as another signer.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'gate-fuzz-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVr33uVAPA1SpA5w/mmBF9ariW8E7
oizIQKqiYfxwSb1zftqZZX045y3tPbRkIWe+t7MUYliQknQ954rDDEASnA==
-----END PUBLIC KEY-----
`;

/** A configuration using every key that reads no file. */
const CONFIG = {
  identities: [
    {
      sanRegExp: 'https://github\\.com/acme/.+',
      issuer: 'https://token.actions.githubusercontent.com',
    },
  ],
  keys: [{ pem: PEM, hint: 'release' }],
  sources: {
    bundles: ['./attestations'],
    rekor: { url: 'https://rekor.sigstore.dev', timeoutMs: 10000 },
    store: {
      url: 'https://api.github.com/repos/acme/api',
      tokenEnv: 'GITHUB_TOKEN',
      optional: false,
    },
    oci: {
      repositories: ['ghcr.io/acme/attestations'],
      searchImageRepository: true,
      platforms: false,
      insecure: [],
      tokenEnv: { 'ghcr.io': 'GHCR_TOKEN' },
      maxReferrers: 100,
    },
  },
  policy: { config: { environments: { dev: { required_rules: ['provenance.present'] } } } },
  mode: 'enforce',
  deadlineMs: 8000,
  ledger: { backend: 'sqlite', path: './ledger.db' },
  server: { allowDryRun: false, openDecisions: false },
  admission: { exemptKinds: ['ConfigMap'], deadlineMs: 5000 },
  notify: {
    webhooks: [{ url: 'https://hooks.example/x', tokenEnv: 'HOOK' }],
    outbox: './outbox.jsonl',
  },
};
const ENV = { GITHUB_TOKEN: 't', GHCR_TOKEN: 'g', HOOK: 'h', GATE_LEDGER_URL: 'postgres://x' };

const N = runs();

function loaded(fn: () => unknown): void {
  const r = coded(fn);
  if (!r.ok) return;
  const c = r.value as ReturnType<typeof normalise>;
  expect(['enforce', 'dry-run']).toContain(c.mode);
  expect(Number.isFinite(c.deadlineMs)).toBe(true);
  expect(Array.isArray(c.sources.bundles)).toBe(true);
  expect(['sqlite', 'postgres', 'jsonl']).toContain(c.ledger.backend);
}

describe('configuration', () => {
  it('the seed configuration loads', () => {
    const c = normalise(CONFIG, dir, 'd', 'config', ENV);
    expect(c.keys).toHaveLength(1);
    expect(c.sources.oci?.tokens).toEqual({ 'ghcr.io': 'g' });
  });

  it(
    'any field changed, removed, retyped or nested: a checked configuration or CONFIG_INVALID',
    async () => {
      await checkProperty(
        'config.field-mutation',
        fc.property(fc.constantFrom(...jsonPaths(CONFIG)), mutation, (p, m) => {
          loaded(() => normalise(replaceAt(CONFIG, p, m), dir, 'd', 'config', ENV));
        }),
        { numRuns: N * 3 },
      );
    },
    timeoutFor(N * 3, 5),
  );

  it(
    'any json value as a configuration: checked or coded',
    async () => {
      await checkProperty(
        'config.arbitrary-json',
        fc.property(fc.jsonValue(), (v) => loaded(() => normalise(v, dir, 'd', 'config', ENV))),
        { numRuns: N },
      );
    },
    timeoutFor(N, 5),
  );

  it(
    'any file text (yaml, its anchors and aliases, tags, json): checked or coded',
    async () => {
      const yamlish = fc.string({
        unit: fc.constantFrom(
          ...'ab:-[]{}&*!|>\'"#%@`,? \n\t0'.split(''),
          'mode: ',
          'keys:\n  - path: ',
          '&a [*a,*a]',
          '!!binary ',
          '!!js/function ',
          '<<: *a\n',
          '---\n',
        ),
        maxLength: 200,
      });
      const file = path.join(dir, 'gate.yaml');
      // yaml warns on process for each unknown tag (!!js/function): thousands of lines here
      const emitWarning = process.emitWarning;
      process.emitWarning = (() => {}) as typeof process.emitWarning;
      try {
        await checkProperty(
          'config.file-text',
          fc.property(yamlish, (text) => {
            writeFileSync(file, text);
            loaded(() => loadConfig(file, { env: ENV }));
          }),
          { numRuns: N * 2 },
        );
      } finally {
        process.emitWarning = emitWarning;
      }
    },
    timeoutFor(N * 2, 10),
  );

  it('an alias bomb is refused with a code', () => {
    const file = path.join(dir, 'bomb.yaml');
    const levels = Array.from({ length: 10 }, (_, i) =>
      i === 0
        ? 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'
        : `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(', ')}]`,
    );
    writeFileSync(file, `${levels.join('\n')}\n`);
    expect(coded(() => loadConfig(file))).toMatchObject({ ok: false, code: 'CONFIG_INVALID' });
  });
});

const PUBLIC_GOOD = JSON.parse(readFileSync(DEFAULT_TRUSTED_ROOT_PATH, 'utf8'));
const STAGING = JSON.parse(
  readFileSync(path.join(FIXTURES, 'rekor', 'staging.trusted_root.json'), 'utf8'),
);
const ROOTS = [
  { name: 'public-good', json: PUBLIC_GOOD, toString: () => 'public-good' },
  { name: 'staging', json: STAGING, toString: () => 'staging' },
];
const V03 = BUNDLE_CASES.find((c) => c.name === 'happy-path-v0.3')!;
const SIGNER = V03.verify(V03.bytes).signer;

describe('trusted roots', () => {
  it('the seed roots load, and the seed bundle verifies under public-good', () => {
    for (const r of ROOTS) expect(trustFromJSON(r.json, 'd', 'fuzz').roots).toHaveLength(1);
    expect(verifyUnder(trustFromJSON(PUBLIC_GOOD, 'd', 'fuzz'), V03.bytes).signer).toEqual(SIGNER);
  });

  it(
    'any field changed, removed, retyped or nested: a checked root or TRUST_ROOT_INVALID',
    async () => {
      const pick = fc
        .constantFrom(...ROOTS)
        .chain((r) => fc.tuple(fc.constant(r), fc.constantFrom(...jsonPaths(r.json))));
      await checkProperty(
        'trust.field-mutation',
        fc.property(pick, mutation, ([r, p], m) => {
          const t = coded(() => trustFromJSON(replaceAt(r.json, p, m), 'd', 'fuzz'));
          if (!t.ok) return;
          expect(t.value.roots.length).toBeGreaterThan(0);
          expect(t.value.material).toBeDefined();
        }),
        { numRuns: N * 2 },
      );
    },
    timeoutFor(N * 2, 10),
  );

  it(
    'a bundle verified under a changed root is rejected with a code or has the same signer',
    async () => {
      const paths = jsonPaths(PUBLIC_GOOD);
      await checkProperty(
        'trust.changed-root-verifies',
        fc.property(fc.constantFrom(...paths), mutation, (p, m) => {
          const t = coded(() => trustFromJSON(replaceAt(PUBLIC_GOOD, p, m), 'd', 'fuzz'));
          if (!t.ok) return;
          const r = coded(() => verifyUnder(t.value, V03.bytes));
          if (r.ok) expect(r.value.signer).toEqual(SIGNER);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );

  it(
    'any trust file text, json or json lines: a checked trust or a code',
    async () => {
      const file = path.join(dir, 'trusted_root.json');
      const line = JSON.stringify(PUBLIC_GOOD);
      const text = fc.oneof(
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc
          .array(
            fc.oneof(
              fc.constant(line),
              fc.jsonValue().map((v) => JSON.stringify(v)),
              fc.string(),
            ),
            { maxLength: 20 },
          )
          .map((l) => l.join('\n')),
        fc.tuple(fc.nat(), fc.string({ maxLength: 4 })).map(([at, s]) => {
          const i = at % line.length;
          return line.slice(0, i) + s + line.slice(i + 1);
        }),
      );
      await checkProperty(
        'trust.file-text',
        fc.property(text, (t) => {
          writeFileSync(file, t);
          const r = coded(() => loadTrustedRoot(file));
          if (r.ok) expect(r.value.roots.length).toBeGreaterThan(0);
        }),
        { numRuns: N },
      );
    },
    timeoutFor(N, 20),
  );
});

const ARTIFACT = readFileSync(
  path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify', 'a.txt'),
);

/** The seed bundle under another trust, any signer its CAs certified accepted. */
function verifyUnder(trust: Trust, bytes: Buffer) {
  return verifyBundle(bytes, { trust, artifact: { bytes: ARTIFACT }, identities: 'any' });
}
