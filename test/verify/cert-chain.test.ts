import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { X509Certificate } from '@sigstore/core';
import { Verifier, type SignedEntity, type Signer, type TrustMaterial } from '@sigstore/verify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { leafCert, UseLibrary, type Cert } from '../../src/verify/cert-chain.js';
import { verifyEntity, type EntityPolicy } from '../../src/verify/entity-verifier.js';
import { trustFromJSON } from '../../src/verify/trust.js';
import * as x from '../support/x509.js';

/**
 * The gate's certificate chain and SCT checks (cert-chain.ts, entity-verifier.ts) against
 * @sigstore/verify's Verifier, the reference they replace: for every chain below both must give
 * the same answer (the same signer, or the same error code, message and cause), and the gate
 * must get there without the library unless it says it cannot (UseLibrary). Chains are built
 * here: a root, an intermediate and Fulcio-like leaves, each field under the test's control.
 */
const SIGNED_AT = new Date('2025-06-01T12:00:00Z');
const minutes = (n: number) => new Date(SIGNED_AT.getTime() + n * 60_000);
const Y2020 = new Date('2020-01-01T00:00:00Z');
const Y2035 = new Date('2035-01-01T00:00:00Z');

const rootKey = x.newKey();
const interKey = x.newKey();
const ctKey = x.newKey();
const logKey = x.newKey();

const caExtensions = (key: x.Key, issuer: x.Key, pathLen?: number) => [
  x.ext.basicConstraints(true, pathLen),
  x.ext.keyUsage(5, 6),
  x.ext.subjectKeyId(key.id),
  x.ext.authorityKeyId(issuer.id),
];
const rootSpec: x.CertSpec = {
  subject: 'test root',
  issuer: 'test root',
  key: rootKey,
  signer: rootKey,
  notBefore: Y2020,
  notAfter: Y2035,
  extensions: caExtensions(rootKey, rootKey),
};
const interSpec: x.CertSpec = {
  subject: 'test intermediate',
  issuer: 'test root',
  key: interKey,
  signer: rootKey,
  notBefore: Y2020,
  notAfter: Y2035,
  extensions: caExtensions(interKey, rootKey, 0),
};
const ROOT = x.issue(rootSpec);
const INTER = x.issue(interSpec);

function leafSpec(key: x.Key, over: Partial<x.CertSpec> = {}): x.CertSpec {
  return {
    subject: '',
    issuer: 'test intermediate',
    key,
    signer: interKey,
    notBefore: minutes(-5),
    notAfter: minutes(5),
    extensions: [
      x.ext.keyUsage(0),
      x.ext.subjectKeyId(key.id),
      x.ext.authorityKeyId((over.signer ?? interKey).id),
      x.ext.sanURI('https://example.com/workflow'),
      x.ext.fulcioIssuer('https://issuer.example.com'),
    ],
    ...over,
  };
}

/** A leaf with an SCT from the CT log `log` (ctKey unless said), as Fulcio issues them. */
function leafWithSCT(key: x.Key, over: Partial<x.CertSpec> = {}, log = ctKey): Buffer {
  const spec = leafSpec(key, over);
  const sct = x.sctExtension(x.tbsOf(spec), spec.signer, log, SIGNED_AT);
  return x.certOf(x.tbsOf(spec, [...spec.extensions, sct]), spec.signer);
}

const logJSON = (k: x.Key, start = '2020-01-01T00:00:00Z') => ({
  baseUrl: 'https://log.example.com',
  hashAlgorithm: 'SHA2_256',
  publicKey: {
    rawBytes: k.spki.toString('base64'),
    keyDetails: 'PKIX_ECDSA_P256_SHA_256',
    validFor: { start },
  },
  logId: { keyId: createHash('sha256').update(k.spki).digest('base64') },
});

interface CA {
  chain: Buffer[];
  start?: string;
  end?: string;
}

/** Trust material as the gate loads it (trust.ts), for these CAs and CT logs. */
function material(cas: CA[], ctlogs: x.Key[] = [ctKey]): TrustMaterial {
  const json = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [logJSON(logKey)],
    certificateAuthorities: cas.map((ca) => ({
      subject: { organization: 'test', commonName: 'test' },
      uri: 'https://ca.example.com',
      certChain: { certificates: ca.chain.map((c) => ({ rawBytes: c.toString('base64') })) },
      validFor: { start: ca.start ?? '2020-01-01T00:00:00Z', ...(ca.end ? { end: ca.end } : {}) },
    })),
    ctlogs: ctlogs.map((k) => logJSON(k)),
    timestampAuthorities: [],
  };
  const root = trustFromJSON(json, 'test', 'test').roots[0]!;
  return {
    ...root.material,
    publicKey: () => {
      throw new Error('no keys');
    },
  } as TrustMaterial;
}

/** A signed entity whose signing time is vouched for by a log entry (not itself checked). */
function entity(leaf: Buffer, key: x.Key, at = SIGNED_AT): SignedEntity {
  const payload = Buffer.from('signed payload');
  const sig = sign('sha256', payload, key.privateKey);
  const tlogEntry = {
    integratedTime: String(at.getTime() / 1000),
    inclusionPromise: { signedEntryTimestamp: Buffer.alloc(0) },
    logId: { keyId: Buffer.alloc(32) },
  };
  return {
    key: { $case: 'certificate', certificate: X509Certificate.parse(Buffer.from(leaf)) },
    timestamps: [{ $case: 'transparency-log', tlogEntry: tlogEntry as never }],
    tlogEntries: [],
    signature: {
      signature: sig,
      compareSignature: () => true,
      compareDigest: () => true,
      verifySignature: (k: KeyObject) => verify('sha256', payload, k, sig),
    },
  };
}

type Outcome =
  | { ok: true; identity: Signer['identity']; key: string }
  | { ok: false; code: string | undefined; message: string; cause: string | undefined };

function outcome(fn: () => Signer): Outcome {
  try {
    const s = fn();
    return {
      ok: true,
      identity: s.identity,
      key: s.key.export({ format: 'der', type: 'spki' }).toString('hex'),
    };
  } catch (err) {
    const e = err as { code?: string; message: string; cause?: { message?: string } };
    return { ok: false, code: e.code, message: e.message, cause: e.cause?.message };
  }
}

function leafOf(e: SignedEntity, der: Buffer): Cert | null {
  if (e.key.$case !== 'certificate') throw new Error('not keyless');
  try {
    return leafCert(e.key.certificate, der);
  } catch (err) {
    if (err instanceof UseLibrary) return null;
    throw err;
  }
}

let fastRuns = 0;
const NO_SCT: EntityPolicy = { tlogThreshold: 0, ctlogThreshold: 0 };
const ONE_SCT: EntityPolicy = { tlogThreshold: 0, ctlogThreshold: 1 };

afterEach(() => vi.restoreAllMocks());

/**
 * Verifies `leaf` both ways and expects the same outcome; `library` says whether the gate may
 * hand the bundle to @sigstore/verify (false: it must not; undefined: either).
 */
function compare(
  leaf: Buffer,
  key: x.Key,
  trust: TrustMaterial,
  policy: EntityPolicy = NO_SCT,
  opts: { at?: Date; library?: boolean } = {},
): Outcome {
  const e = entity(leaf, key, opts.at);
  const expected = outcome(() => new Verifier(trust, policy).verify(e));
  const spy = vi.spyOn(Verifier.prototype, 'verify');
  const got = outcome(() => verifyEntity(e, trust, policy, leafOf(e, leaf)));
  const usedLibrary = spy.mock.calls.length > 0;
  if (!usedLibrary) fastRuns++;
  spy.mockRestore();
  expect(got).toEqual(expected);
  if (opts.library !== undefined) expect(usedLibrary).toBe(opts.library);
  return got;
}

const rejected = (o: Outcome, message: string, cause?: string) =>
  expect(o).toMatchObject({ ok: false, code: 'CERTIFICATE_ERROR', message, cause });

describe('the gate checks a chain as @sigstore/verify does, without it', () => {
  const trust = material([{ chain: [INTER, ROOT] }]);

  it('verifies a leaf issued by the trusted intermediate, with its SCT', () => {
    const key = x.newKey();
    const o = compare(leafWithSCT(key), key, trust, ONE_SCT, { library: false });
    expect(o).toMatchObject({
      ok: true,
      identity: {
        subjectAlternativeName: 'https://example.com/workflow',
        extensions: { issuer: 'https://issuer.example.com' },
      },
      key: key.spki.toString('hex'),
    });
  });

  it('rejects a leaf signed by an untrusted intermediate of the same name, after a good one', () => {
    const good = x.newKey();
    compare(leafWithSCT(good), good, trust, ONE_SCT, { library: false });
    const rogueKey = x.newKey();
    const key = x.newKey();
    // named as the trusted intermediate and pointing at its key id, signed by another key
    const forged = leafWithSCT(key, {
      signer: rogueKey,
      extensions: leafSpec(key).extensions,
    });
    rejected(
      compare(forged, key, trust, ONE_SCT, { library: false }),
      'Failed to verify certificate chain',
      'no valid certificate path found',
    );
    // and by the rogue intermediate's own key id
    const other = leafWithSCT(key, { signer: rogueKey });
    rejected(
      compare(other, key, trust, ONE_SCT, { library: false }),
      'Failed to verify certificate chain',
      'no valid certificate path found',
    );
  });

  it('rejects a leaf when the trusted intermediate had expired at signing time', () => {
    const expired = x.issue({ ...interSpec, notAfter: minutes(-10) });
    const key = x.newKey();
    rejected(
      compare(leafWithSCT(key), key, material([{ chain: [expired, ROOT] }]), ONE_SCT, {
        library: false,
      }),
      'Failed to verify certificate chain',
      'certificate is not valid or expired at the specified date',
    );
    // a bundle signed while it was valid still verifies, and the verdict is per signing time
    const early = x.issue({ ...interSpec, notAfter: minutes(10) });
    const trustEarly = material([{ chain: [early, ROOT] }]);
    expect(compare(leafWithSCT(key), key, trustEarly, ONE_SCT, { library: false }).ok).toBe(true);
    const later = { notBefore: minutes(14), notAfter: minutes(30) };
    rejected(
      compare(leafWithSCT(key, later), key, trustEarly, ONE_SCT, { at: minutes(15) }),
      'Failed to verify certificate chain',
      'certificate is not valid or expired at the specified date',
    );
  });

  it('rejects a leaf signed outside its own validity', () => {
    const key = x.newKey();
    for (const at of [minutes(-6), minutes(6)]) {
      rejected(
        compare(leafWithSCT(key), key, trust, ONE_SCT, { at, library: false }),
        'Failed to verify certificate chain',
        'certificate is not valid or expired at the specified date',
      );
    }
  });

  it('rejects an intermediate that is not a CA, by basic constraints or by key usage', () => {
    const key = x.newKey();
    const notCA = x.issue({
      ...interSpec,
      extensions: [
        x.ext.basicConstraints(false),
        x.ext.keyUsage(5, 6),
        x.ext.subjectKeyId(interKey.id),
        x.ext.authorityKeyId(rootKey.id),
      ],
    });
    const noCertSign = x.issue({
      ...interSpec,
      extensions: [
        x.ext.basicConstraints(true),
        x.ext.keyUsage(0, 6),
        x.ext.subjectKeyId(interKey.id),
        x.ext.authorityKeyId(rootKey.id),
      ],
    });
    for (const inter of [notCA, noCertSign]) {
      rejected(
        compare(leafWithSCT(key), key, material([{ chain: [inter, ROOT] }]), ONE_SCT, {
          library: false,
        }),
        'Failed to verify certificate chain',
        'intermediate certificate is not a CA',
      );
    }
  });

  it('rejects a chain longer than a path length constraint allows', () => {
    const strictRoot = x.issue({ ...rootSpec, extensions: caExtensions(rootKey, rootKey, 0) });
    const inter2Key = x.newKey();
    const inter2 = x.issue({
      ...interSpec,
      subject: 'second intermediate',
      issuer: 'test intermediate',
      key: inter2Key,
      signer: interKey,
      extensions: caExtensions(inter2Key, interKey),
    });
    const key = x.newKey();
    const leaf = leafWithSCT(key, { issuer: 'second intermediate', signer: inter2Key });
    const three = [inter2, x.issue({ ...interSpec, extensions: caExtensions(interKey, rootKey) })];
    rejected(
      compare(leaf, key, material([{ chain: [...three, strictRoot] }]), ONE_SCT, {
        library: false,
      }),
      'Failed to verify certificate chain',
      'path length constraint exceeded',
    );
    // the intermediate's own constraint of 0 forbids the second one below it
    rejected(
      compare(leaf, key, material([{ chain: [inter2, INTER, ROOT] }]), ONE_SCT, {
        library: false,
      }),
      'Failed to verify certificate chain',
      'path length constraint exceeded',
    );
    expect(
      compare(leaf, key, material([{ chain: [...three, ROOT] }]), ONE_SCT, { library: false }).ok,
    ).toBe(true);
  });

  it('rejects a leaf whose issuer name is not its issuer certificate subject', () => {
    const key = x.newKey();
    rejected(
      compare(leafWithSCT(key, { issuer: 'someone else' }), key, trust, ONE_SCT, {
        library: false,
      }),
      'Failed to verify certificate chain',
      'incorrect certificate name chaining',
    );
  });

  it('rejects a chain that does not end in a self-signed root', () => {
    const key = x.newKey();
    rejected(
      compare(leafWithSCT(key), key, material([{ chain: [INTER] }]), ONE_SCT, { library: false }),
      'Failed to verify certificate chain',
      'no valid certificate path found',
    );
  });

  it('rejects a self-signed leaf', () => {
    const key = x.newKey();
    const self = x.issue(leafSpec(key, { subject: 'me', issuer: 'me', signer: key }));
    rejected(
      compare(self, key, trust, NO_SCT, { library: false }),
      'Failed to verify certificate chain',
      'no trusted certificate path found',
    );
  });

  it('uses only the CAs valid at signing time, the first that verifies', () => {
    const key = x.newKey();
    const leaf = leafWithSCT(key);
    rejected(
      compare(leaf, key, material([{ chain: [INTER, ROOT], end: minutes(-1).toISOString() }])),
      'Failed to verify certificate chain',
    );
    rejected(
      compare(leaf, key, material([{ chain: [INTER, ROOT], start: minutes(1).toISOString() }])),
      'Failed to verify certificate chain',
    );
    const otherKey = x.newKey();
    const other = x.issue({ ...rootSpec, subject: 'other', issuer: 'other', key: otherKey });
    const two = material([{ chain: [other] }, { chain: [INTER, ROOT] }]);
    expect(compare(leaf, key, two, ONE_SCT, { library: false }).ok).toBe(true);
    // the last CA's reason is the one reported
    const expired = x.issue({ ...interSpec, notAfter: minutes(-10) });
    rejected(
      compare(leaf, key, material([{ chain: [INTER] }, { chain: [expired, ROOT] }]), ONE_SCT, {
        library: false,
      }),
      'Failed to verify certificate chain',
      'certificate is not valid or expired at the specified date',
    );
  });

  it('does not carry a CA verified under one trusted root over to another', () => {
    const key = x.newKey();
    const leaf = leafWithSCT(key);
    expect(compare(leaf, key, trust, ONE_SCT, { library: false }).ok).toBe(true);
    // the same certificates, trusted by another root only until before the signing time
    const narrower = material([{ chain: [INTER, ROOT], end: minutes(-1).toISOString() }]);
    rejected(
      compare(leaf, key, narrower, ONE_SCT, { library: false }),
      'Failed to verify certificate chain',
    );
    // another root's CA with the same names but other keys
    const rootKey2 = x.newKey();
    const interKey2 = x.newKey();
    const lookalike = material([
      {
        chain: [
          x.issue({ ...interSpec, key: interKey2, signer: rootKey2 }),
          x.issue({ ...rootSpec, key: rootKey2, signer: rootKey2 }),
        ],
      },
    ]);
    rejected(
      compare(leaf, key, lookalike, ONE_SCT, { library: false }),
      'Failed to verify certificate chain',
      'no valid certificate path found',
    );
    expect(compare(leaf, key, trust, ONE_SCT, { library: false }).ok).toBe(true);
  });
});

describe('the gate checks SCTs as @sigstore/verify does', () => {
  const trust = material([{ chain: [INTER, ROOT] }]);

  it('rejects an SCT from a log the root does not trust, or not valid then', () => {
    const key = x.newKey();
    const rogue = leafWithSCT(key, {}, x.newKey());
    rejected(compare(rogue, key, trust, ONE_SCT, { library: false }), 'SCT verification failed');
    const later = material([{ chain: [INTER, ROOT] }], []);
    rejected(
      compare(leafWithSCT(key), key, later, ONE_SCT, { library: false }),
      'SCT verification failed',
    );
  });

  it('rejects an SCT over another precertificate', () => {
    const key = x.newKey();
    const spec = leafSpec(key);
    const otherTBS = x.tbsOf({ ...spec, serial: 2 });
    const sct = x.sctExtension(otherTBS, interKey, ctKey, SIGNED_AT);
    const leaf = x.certOf(x.tbsOf(spec, [...spec.extensions, sct]), interKey);
    rejected(compare(leaf, key, trust, ONE_SCT, { library: false }), 'SCT verification failed');
  });

  it('counts SCTs against the threshold', () => {
    const key = x.newKey();
    const bare = x.issue(leafSpec(key));
    rejected(compare(bare, key, trust, ONE_SCT, { library: false }), 'expected 1 SCTs, got 0');
    expect(compare(bare, key, trust, NO_SCT, { library: false }).ok).toBe(true);
  });

  it('keeps the extension list when the SCT is the only extension, as the library does', () => {
    const key = x.newKey();
    const spec = leafSpec(key, { extensions: [] });
    for (const pre of [x.tbsOf(spec), x.tbsOf(spec, [x.seq()])]) {
      const sct = x.sctExtension(pre, interKey, ctKey, SIGNED_AT);
      const leaf = x.certOf(x.tbsOf(spec, [sct]), interKey);
      compare(leaf, key, trust, ONE_SCT);
    }
  });
});

describe('what the gate hands to @sigstore/verify', () => {
  const trust = material([{ chain: [INTER, ROOT] }]);

  /** The certificate with its TBS length written in one byte more than DER allows. */
  function nonCanonical(spec: x.CertSpec, signCanonical: boolean): Buffer {
    const tbs = x.tbsOf(spec);
    expect(tbs[1]).toBe(0x82);
    const loose = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), tbs.subarray(2)]);
    return x.certOf(loose, spec.signer, signCanonical ? tbs : loose);
  }

  it('a leaf that is not DER, whichever bytes its CA signed', () => {
    const key = x.newKey();
    const accepted = compare(nonCanonical(leafSpec(key), true), key, trust, NO_SCT, {
      library: true,
    });
    expect(accepted.ok).toBe(true);
    const refused = compare(nonCanonical(leafSpec(key), false), key, trust, NO_SCT, {
      library: true,
    });
    expect(refused.ok).toBe(false);
  });

  it('a leaf that is a trusted certificate, or names itself the issuer of one', () => {
    compare(INTER, interKey, trust, NO_SCT, { library: true });
    const key = x.newKey();
    // the library would try it as the issuer of the intermediate: by key id, or by name when
    // the certificates carry no key ids
    const spec = leafSpec(key);
    const claimsRootKeyId = x.issue({
      ...spec,
      extensions: [x.ext.subjectKeyId(rootKey.id), ...spec.extensions.slice(2)],
    });
    compare(claimsRootKeyId, key, trust, NO_SCT, { library: true });
    const plain = (c: x.CertSpec) => ({ ...c, extensions: c.extensions.slice(0, 2) });
    const unnamed = material([{ chain: [x.issue(plain(interSpec)), x.issue(plain(rootSpec))] }]);
    const namedRoot = x.issue({ ...plain(spec), subject: 'test root' });
    compare(namedRoot, key, unnamed, NO_SCT, { library: true });
    expect(compare(x.issue(plain(spec)), key, unnamed, NO_SCT, { library: false }).ok).toBe(true);
  });

  it('any changed byte of a leaf gets the same answer', () => {
    const key = x.newKey();
    const leaf = leafWithSCT(key);
    let compared = 0;
    fastRuns = 0;
    for (let at = 0; at < leaf.length; at += 3) {
      const copy = Buffer.from(leaf);
      copy[at] = copy[at]! ^ (1 << (at % 8));
      try {
        X509Certificate.parse(Buffer.from(copy));
      } catch {
        continue;
      }
      compare(copy, key, trust, ONE_SCT);
      compared++;
    }
    expect(compared).toBeGreaterThan(leaf.length / 6);
    // most of them the gate answered on its own (the others do not parse as DER)
    expect(fastRuns).toBeGreaterThan(compared / 2);
  });

  it('any changed byte of the trusted intermediate gets the same answer', () => {
    const key = x.newKey();
    const leaf = leafWithSCT(key);
    fastRuns = 0;
    let compared = 0;
    for (let at = 0; at < INTER.length; at += 7) {
      const copy = Buffer.from(INTER);
      copy[at] = copy[at]! ^ 0x10;
      let changed: TrustMaterial;
      try {
        changed = material([{ chain: [copy, ROOT] }]);
      } catch {
        continue;
      }
      compare(leaf, key, changed, ONE_SCT);
      compared++;
    }
    expect(fastRuns).toBeGreaterThan(compared / 2);
  });
});
