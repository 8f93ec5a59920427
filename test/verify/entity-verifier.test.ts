import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import type { X509Certificate } from '@sigstore/core';
import {
  toSignedEntity,
  Verifier,
  type SignedEntity,
  type Signer,
  type TrustMaterial,
} from '@sigstore/verify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { leafCert, UseLibrary } from '../../src/verify/cert-chain.js';
import { verifyEntity, type EntityPolicy } from '../../src/verify/entity-verifier.js';
import { loadTrustedRoot, trustFromJSON } from '../../src/verify/trust.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { expectCode, FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import { flipByte, mutate } from '../support/mutate.js';
import {
  startLocalSigstore,
  type LocalSigstore,
  type TrustedRootJSON,
} from '../support/sigstore-services.js';

/**
 * The gate's verification steps (entity-verifier.ts) against @sigstore/verify's Verifier on
 * keyless bundles minted now (Fulcio certificate with an SCT, Rekor entry, RFC 3161 timestamp):
 * under every change to the trusted root or to the bundle below, both give the same answer.
 * Chains built field by field are in cert-chain.test.ts.
 */
let svc: LocalSigstore;
let bundle: Record<string, unknown>;
const POLICY: EntityPolicy = { tlogThreshold: 1, ctlogThreshold: 1 };

beforeAll(async () => {
  svc = await startLocalSigstore();
  const m = await mintDSSEBundle(svc, {
    statement: {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'app', digest: { sha256: 'a'.repeat(64) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {},
    },
    version: '0.3',
    signer: 'keyless',
    tsa: true,
  });
  bundle = m.bundle as unknown as Record<string, unknown>;
});
afterAll(() => svc.close());
afterEach(() => vi.restoreAllMocks());

function materialOf(root: TrustedRootJSON): TrustMaterial {
  const material = trustFromJSON(root, 'test', 'test').roots[0]!.material;
  return { ...material, publicKey: () => ({}) as never } as TrustMaterial;
}

type Outcome =
  | { ok: true; identity: Signer['identity']; key: string }
  | { ok: false; code: string | undefined; message: string; cause: string | undefined };

function outcome(fn: () => Signer): Outcome {
  try {
    const s = fn();
    const key = s.key.export({ format: 'der', type: 'spki' }).toString('hex');
    return { ok: true, identity: s.identity, key };
  } catch (err) {
    const e = err as { code?: string; message: string; cause?: { message?: string } };
    return { ok: false, code: e.code, message: e.message, cause: e.cause?.message };
  }
}

let fastRuns = 0;

/** Both verifiers on `json` under `root`: undefined when the bundle does not even parse. */
function compare(json: unknown, root: TrustedRootJSON = svc.trustedRoot): Outcome | undefined {
  let entity: SignedEntity;
  let raw: Buffer;
  try {
    const b = bundleFromJSON(json);
    entity = toSignedEntity(b);
    const vm = b.verificationMaterial.content;
    if (vm.$case !== 'certificate') throw new Error('not a v0.3 keyless bundle');
    raw = Buffer.from(vm.certificate.rawBytes);
  } catch {
    return undefined;
  }
  const material = materialOf(root);
  const expected = outcome(() => new Verifier(material, POLICY).verify(entity));
  const spy = vi.spyOn(Verifier.prototype, 'verify');
  const got = outcome(() => {
    let leaf;
    try {
      leaf = leafCert((entity.key as { certificate: X509Certificate }).certificate, raw);
    } catch (err) {
      if (!(err instanceof UseLibrary)) throw err;
      leaf = null;
    }
    return verifyEntity(entity, material, POLICY, leaf);
  });
  if (spy.mock.calls.length === 0) fastRuns++;
  spy.mockRestore();
  expect(got).toEqual(expected);
  return got;
}

const later = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('the gate verifies a keyless bundle as @sigstore/verify does', () => {
  it('verifies the minted bundle, without the library', () => {
    fastRuns = 0;
    expect(compare(bundle)).toMatchObject({ ok: true });
    expect(fastRuns).toBe(1);
  });

  const roots: Array<[string, (r: TrustedRootJSON) => unknown, string]> = [
    [
      'a tsa not yet valid',
      (r) => (r.timestampAuthorities[0]!.validFor.start = later(3.6e6)),
      'TIMESTAMP_ERROR',
    ],
    [
      'a tsa no longer valid',
      (r) => (r.timestampAuthorities[0]!.validFor.end = later(-3.6e6)),
      'TIMESTAMP_ERROR',
    ],
    [
      'a tsa without its root',
      (r) => r.timestampAuthorities[0]!.certChain.certificates.pop(),
      'TIMESTAMP_ERROR',
    ],
    [
      'a tsa chain upside down',
      (r) => r.timestampAuthorities[0]!.certChain.certificates.reverse(),
      'TIMESTAMP_ERROR',
    ],
    ['no tsa', (r) => r.timestampAuthorities.pop(), 'TIMESTAMP_ERROR'],
    [
      'a ca no longer valid',
      (r) => (r.certificateAuthorities[0]!.validFor.end = later(-3.6e6)),
      'CERTIFICATE_ERROR',
    ],
    [
      'a ca holding the tsa chain',
      (r) => (r.certificateAuthorities[0]!.certChain = r.timestampAuthorities[0]!.certChain),
      'CERTIFICATE_ERROR',
    ],
    ['no ct log', (r) => r.ctlogs.pop(), 'CERTIFICATE_ERROR'],
    [
      'another log key',
      (r) => (r.tlogs[0]!.publicKey.rawBytes = r.ctlogs[0]!.publicKey.rawBytes),
      'TLOG_INCLUSION_PROMISE_ERROR',
    ],
  ];
  for (const [what, change, code] of roots) {
    it(`rejects it under a trusted root with ${what}`, () => {
      const root = svc.trustedRoot;
      change(root);
      expect(compare(bundle, root)).toMatchObject({ ok: false, code });
    });
  }

  it('answers the same for any changed byte of the timestamp, certificate or log entry', () => {
    const fields = [
      'verificationMaterial.timestampVerificationData.rfc3161Timestamps.0.signedTimestamp',
      'verificationMaterial.certificate.rawBytes',
      'verificationMaterial.tlogEntries.0.inclusionPromise.signedEntryTimestamp',
    ];
    let compared = 0;
    fastRuns = 0;
    for (const field of fields) {
      const length = Buffer.from(
        field.split('.').reduce((n: any, k) => n[k], bundle) as string,
        'base64',
      ).length;
      for (let at = 0; at < length; at += 5) {
        if (compare(mutate(bundle, field, (v) => flipByte(v as string, at))) !== undefined) {
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
    expect(fastRuns).toBeGreaterThan(compared / 2);
  });
});

describe('verifyBundle', () => {
  it('checks a keyless bundle without @sigstore/verify', () => {
    const spy = vi.spyOn(Verifier.prototype, 'verify');
    const trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
    for (let i = 0; i < 3; i++) {
      expect(verifyBundle(bundle, { trust, identities: 'any' }).signer.kind).toBe('keyless');
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('checks the real public-good bundles and conformance cases without it', () => {
    const spy = vi.spyOn(Verifier.prototype, 'verify');
    const trust = loadTrustedRoot();
    const dir = path.join(FIXTURES, 'sigstore-js', 'bundles');
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.sigstore'))) {
      verifyBundle(readFileSync(path.join(dir, f)), { trust, identities: 'any' });
    }
    const suite = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
    let keyless = 0;
    for (const name of readdirSync(suite).filter((n) => !n.endsWith('_fail'))) {
      const at = (f: string) => path.join(suite, name, f);
      if (!existsSync(at('bundle.sigstore.json')) || existsSync(at('key.pub'))) continue;
      const artifact = existsSync(at('artifact')) ? at('artifact') : path.join(suite, 'a.txt');
      const root = existsSync(at('trusted_root.json'))
        ? loadTrustedRoot(at('trusted_root.json'))
        : trust;
      verifyBundle(readFileSync(at('bundle.sigstore.json')), {
        trust: root,
        identities: 'any',
        artifact: { bytes: readFileSync(artifact) },
      });
      keyless++;
    }
    expect(keyless).toBeGreaterThan(15);
    expect(spy).not.toHaveBeenCalled();
  });

  it('does not reuse one trusted root verdict on a CA for another root with the same CA', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gate-roots-'));
    try {
      const expired = svc.trustedRoot;
      expired.certificateAuthorities[0]!.validFor.end = later(-3.6e6);
      const file = (name: string, roots: TrustedRootJSON[]) => {
        const f = path.join(dir, name);
        writeFileSync(f, roots.map((r) => JSON.stringify(r)).join('\n') + '\n');
        return loadTrustedRoot(f);
      };
      const both = file('both.jsonl', [expired, svc.trustedRoot]);
      const good = verifyBundle(bundle, { trust: both, identities: 'any' });
      expect(good.trustRoot?.name).toBe(both.roots[1]!.name);
      // the same certificates, under a root whose CA window closed before the signing
      expectCode(
        () =>
          verifyBundle(bundle, { trust: { ...both, roots: [both.roots[0]!] }, identities: 'any' }),
        'CERTIFICATE_INVALID',
      );
      const onlyExpired = file('expired.json', [expired]);
      expectCode(
        () => verifyBundle(bundle, { trust: onlyExpired, identities: 'any' }),
        'CERTIFICATE_INVALID',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
