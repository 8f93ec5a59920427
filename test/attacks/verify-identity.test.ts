import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gate } from '../../src/gate.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { compileIdentityRules } from '../../src/verify/identity.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { IdentityRule } from '../../src/verify/types.js';
import { startLocalGitHubSigstore } from '../support/github-sigstore.js';
import { DEFAULT_IDENTITY, mintDSSEBundle, type Minted } from '../support/mint.js';
import { flipByte, mutate } from '../support/mutate.js';
import {
  startLocalSigstore,
  type LocalSigstore,
  type TrustedRootJSON,
} from '../support/sigstore-services.js';
import { bytesOf, evidenceOf, gateOver, hex, requestFor, statementAbout } from './gate-support.js';
import { expectDecision, expectRefused } from './report.js';

/**
 * Attack corpus: who signed, with which certificate, and when. Certificates from a CA the root
 * does not trust, roots smuggled in the bundle, identities that do not match or would match only
 * unanchored, SCTs missing or forged, signing times outside the certificate, timestamps from the
 * wrong authority or over another signature. Real Fulcio-style certificates from local services.
 */
const ARTIFACT = Buffer.from('identity attack artifact\n');
const A = hex(ARTIFACT);
const ID: IdentityRule = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };
const STATEMENT = statementAbout([A]);

let svc: LocalSigstore;
let other: LocalSigstore;
let trust: Trust;
let good: Minted;
let chained: Minted;
const gates: Gate[] = [];

const trustOf = (root: TrustedRootJSON, name = 'edited') => trustFromJSON(root, name, name);
const check = (bundle: unknown, o: { trust?: Trust; identities?: IdentityRule[] } = {}) =>
  verifyAttestation(bundle, {
    trust: o.trust ?? trust,
    identities: o.identities ?? [ID],
    subject: { bytes: ARTIFACT },
  });

beforeAll(async () => {
  [svc, other] = await Promise.all([startLocalSigstore(), startLocalSigstore()]);
  trust = trustOf(svc.trustedRoot, 'local');
  [good, chained] = await Promise.all([
    mintDSSEBundle(svc, { statement: STATEMENT, version: '0.3', signer: 'keyless', tsa: true }),
    mintDSSEBundle(svc, { statement: STATEMENT, version: '0.2', signer: 'keyless' }),
  ]);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await Promise.all([svc?.close(), other?.close()]);
});

describe('certificate chains', () => {
  it('a leaf that does not chain to a trusted CA is CERTIFICATE_INVALID', async () => {
    const foreign = await mintDSSEBundle(other, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
    });
    expect(check(good.bundle).signer.identity).toBe(ID.san);
    await expectRefused(
      'leaf not chaining to a trusted CA',
      undefined,
      () => check(foreign.bundle),
      'CERTIFICATE_INVALID',
    );
  });

  it('a root carried in the bundle is never a trust anchor', async () => {
    // a v0.2 bundle from another CA, its chain completed with that CA's own root
    const foreign = await mintDSSEBundle(other, {
      statement: STATEMENT,
      version: '0.2',
      signer: 'keyless',
    });
    const theirRoot = other.trustedRoot.certificateAuthorities[0]!.certChain.certificates[0]!;
    const withRoot = mutate(
      foreign.bundle,
      'verificationMaterial.x509CertificateChain.certificates',
      (c) => [...(c as unknown[]), { rawBytes: theirRoot.rawBytes }],
    );
    await expectRefused(
      'root carried in the bundle',
      undefined,
      () => check(withRoot),
      'CERTIFICATE_INVALID',
    );
    // nor does a trusted leaf gain anything from an extra root after it
    const padded = mutate(
      chained.bundle,
      'verificationMaterial.x509CertificateChain.certificates',
      (c) => [...(c as unknown[]), { rawBytes: theirRoot.rawBytes }],
    );
    expect(check(padded).signer.identity).toBe(ID.san);
  });

  it('an empty chain is BUNDLE_EMPTY_CHAIN', async () => {
    const empty = mutate(
      chained.bundle,
      'verificationMaterial.x509CertificateChain.certificates',
      () => [],
    );
    await expectRefused(
      'empty certificate chain',
      undefined,
      () => check(empty),
      'BUNDLE_EMPTY_CHAIN',
    );
  });
});

describe('identities', () => {
  it('a wrong SAN is IDENTITY_MISMATCH', async () => {
    await expectRefused(
      'wrong SAN',
      undefined,
      () =>
        check(good.bundle, {
          identities: [
            {
              ...ID,
              san: 'https://github.com/gate-test/app/.github/workflows/other.yml@refs/heads/main',
            },
          ],
        }),
      'IDENTITY_MISMATCH',
    );
  });

  it('a wrong issuer is IDENTITY_MISMATCH', async () => {
    await expectRefused(
      'wrong issuer',
      undefined,
      () => check(good.bundle, { identities: [{ ...ID, issuer: 'https://accounts.google.com' }] }),
      'IDENTITY_MISMATCH',
    );
  });

  it('an identity rule that would match unanchored does not match', async () => {
    // the prefix of the real SAN would match it unanchored (a substring search)
    await expectRefused(
      'identity rule matching only unanchored (prefix)',
      undefined,
      () =>
        check(good.bundle, {
          identities: [{ sanRegExp: 'https://github\\.com/gate-test/app', issuer: ID.issuer }],
        }),
      'IDENTITY_MISMATCH',
    );
    // an attacker's SAN that embeds the trusted one
    const evil = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
      identity: { san: `https://evil.example/x?${ID.san}`, issuer: ID.issuer },
    });
    const exact = ID.san!.replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&');
    await expectRefused(
      'identity rule matching only unanchored (embedded SAN)',
      undefined,
      () => check(evil.bundle, { identities: [{ sanRegExp: exact, issuer: ID.issuer }] }),
      'IDENTITY_MISMATCH',
    );
    // an alternation stays inside the anchors: "a|b" is ^(a|b)$, not ^a|b$
    await expectRefused(
      'identity rule alternation escaping the anchors',
      undefined,
      () =>
        check(evil.bundle, {
          identities: [{ sanRegExp: `nobody|${exact}`, issuer: ID.issuer }],
        }),
      'IDENTITY_MISMATCH',
    );
    expect(
      check(good.bundle, { identities: [{ sanRegExp: exact, issuer: ID.issuer }] }).signer.identity,
    ).toBe(ID.san);
  });

  it('identity constraints configured are never skipped (CVE-2025-29778)', async () => {
    // no rule at all is not "any signer"
    await expectRefused(
      'identity constraints skipped: empty rule list',
      'CVE-2025-29778',
      () => check(good.bundle, { identities: [] }),
      'IDENTITY_MISMATCH',
    );
    // an extension constraint the certificate does not meet
    await expectRefused(
      'identity constraints skipped: extension',
      'CVE-2025-29778',
      () =>
        verifyAttestation(good.bundle, {
          trust,
          identities: compileIdentityRules([
            { ...ID, extensions: { sourceRepositoryRef: 'refs/heads/release' } },
          ]),
          subject: { bytes: ARTIFACT },
        }),
      'IDENTITY_MISMATCH',
    );
    // through the gate: identities in the configuration apply to every piece of evidence
    const g = await gateOver(svc, {
      evidence: [evidenceOf(bytesOf(good.bundle))],
      doc: { identities: [{ san: 'someone-else@example.com', issuer: ID.issuer }] },
    });
    gates.push(g);
    const d = await g.check(requestFor(A));
    expectDecision(
      'identity constraints skipped: gate configuration',
      'CVE-2025-29778',
      d,
      'deny',
      'IDENTITY_MISMATCH',
      d.evidence[0]?.code,
    );
  });
});

describe('signed certificate timestamps', () => {
  it('a missing SCT is CERTIFICATE_INVALID when the root lists a CT log', async () => {
    const github = await startLocalGitHubSigstore();
    try {
      const m = await mintDSSEBundle(github, {
        statement: STATEMENT,
        version: '0.3',
        signer: 'keyless',
        tlog: false,
        tsa: true,
      });
      const root = github.trustedRoot;
      root.ctlogs = svc.trustedRoot.ctlogs;
      await expectRefused(
        'missing SCT',
        undefined,
        () => check(m.bundle, { trust: trustOf(root) }),
        'CERTIFICATE_INVALID',
        /SCT/,
      );
      // the same bundle verifies under its own root, which lists no CT log
      expect(check(m.bundle, { trust: trustOf(github.trustedRoot) }).signer.identity).toBe(ID.san);
    } finally {
      await github.close();
    }
  });

  it('an SCT that does not verify under the CT log key of its log id is CERTIFICATE_INVALID', async () => {
    const root = svc.trustedRoot;
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    root.ctlogs[0]!.publicKey.rawBytes = publicKey
      .export({ format: 'der', type: 'spki' })
      .toString('base64');
    await expectRefused(
      'invalid SCT',
      undefined,
      () => check(good.bundle, { trust: trustOf(root) }),
      'CERTIFICATE_INVALID',
    );
  });
});

describe('signing times', () => {
  it('a signing time outside the certificate is refused', async () => {
    // the TSA stamps 11 minutes on, after the 10-minute certificate expired; no log entry
    const late = await startLocalSigstore({ clocks: { tsa: () => Date.now() + 11 * 60_000 } });
    try {
      const m = await mintDSSEBundle(late, {
        statement: STATEMENT,
        version: '0.3',
        signer: 'keyless',
        tlog: false,
        tsa: true,
      });
      await expectRefused(
        'signing time outside the certificate',
        undefined,
        () =>
          verifyAttestation(m.bundle, {
            trust: trustOf(late.trustedRoot),
            identities: [ID],
            subject: { bytes: ARTIFACT },
            tlogThreshold: 0,
          }),
        'CERTIFICATE_INVALID',
      );
    } finally {
      await late.close();
    }
  });

  it('an integrated time in the future is refused', async () => {
    const future = await startLocalSigstore({ clocks: { rekor: () => Date.now() + 2 * 3600_000 } });
    try {
      const m = await mintDSSEBundle(future, {
        statement: STATEMENT,
        version: '0.3',
        signer: 'keyless',
      });
      await expectRefused(
        'integrated time in the future (keyless)',
        undefined,
        () => check(m.bundle, { trust: trustOf(future.trustedRoot) }),
        'TLOG_INVALID',
      );
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const k = await mintDSSEBundle(future, {
        statement: STATEMENT,
        version: '0.3',
        signer: 'key',
        privateKey: key.privateKey,
      });
      await expectRefused(
        'integrated time in the future (key-signed)',
        undefined,
        () =>
          verifyAttestation(k.bundle, {
            trust: trustOf(future.trustedRoot),
            keys: [{ pem: k.publicKeyPem! }],
            subject: { bytes: ARTIFACT },
          }),
        'TLOG_INVALID',
      );
    } finally {
      await future.close();
    }
  });

  it('an unauthenticated integrated time is never used as the signing time', async () => {
    // a v0.3 entry whose promise (the SET, which signs the integrated time) is removed: the
    // inclusion proof covers the body only, so the integrated time is the attacker's to choose
    const m = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
    });
    // (moved to index 0, where the local log's one-entry tree proof puts it: an entry without a
    // promise must sit where its proof says)
    const noPromise = mutate(
      mutate(m.bundle, 'verificationMaterial.tlogEntries.0.inclusionPromise', () => undefined),
      'verificationMaterial.tlogEntries.0.logIndex',
      () => '0',
    );
    await expectRefused(
      'unauthenticated integrated time (promise removed)',
      undefined,
      () => check(noPromise),
      'TIMESTAMP_INVALID',
    );
    const moved = mutate(noPromise, 'verificationMaterial.tlogEntries.0.integratedTime', (t) =>
      String(Number(t) - 60),
    );
    await expectRefused(
      'unauthenticated integrated time (moved)',
      undefined,
      () => check(moved),
      'TIMESTAMP_INVALID',
    );
    // with its SET kept, an edited integrated time no longer matches what the log signed
    const withPromise = mutate(m.bundle, 'verificationMaterial.tlogEntries.0.integratedTime', (t) =>
      String(Number(t) + 1),
    );
    await expectRefused(
      'integrated time edited under its SET',
      undefined,
      () => check(withPromise),
      'TLOG_INVALID',
    );
  });
});

describe('rfc 3161 timestamps', () => {
  it('a timestamp from an untrusted authority is TIMESTAMP_INVALID', async () => {
    const root = svc.trustedRoot;
    root.timestampAuthorities = other.trustedRoot.timestampAuthorities;
    await expectRefused(
      'timestamp from an untrusted authority',
      undefined,
      () => check(good.bundle, { trust: trustOf(root) }),
      'TIMESTAMP_INVALID',
    );
  });

  it('a timestamp outside its authority validity is TIMESTAMP_INVALID', async () => {
    const root = svc.trustedRoot;
    const start = new Date(Date.now() - 3 * 86400_000).toISOString();
    const end = new Date(Date.now() - 2 * 86400_000).toISOString();
    root.timestampAuthorities[0]!.validFor = { start, end };
    await expectRefused(
      'timestamp outside its authority validity',
      undefined,
      () => check(good.bundle, { trust: trustOf(root) }),
      'TIMESTAMP_INVALID',
    );
  });

  it('a timestamp over another payload is TIMESTAMP_INVALID', async () => {
    const another = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
      tsa: true,
    });
    const swapped = mutate(
      good.bundle,
      'verificationMaterial.timestampVerificationData',
      () => another.bundle.verificationMaterial.timestampVerificationData,
    );
    await expectRefused(
      'timestamp over another payload',
      undefined,
      () => check(swapped),
      'TIMESTAMP_INVALID',
    );
    const flipped = mutate(
      good.bundle,
      'verificationMaterial.timestampVerificationData.rfc3161Timestamps.0.signedTimestamp',
      (s) => flipByte(s as string, -8),
    );
    await expectRefused(
      'timestamp corrupted',
      undefined,
      () => check(flipped),
      'TIMESTAMP_INVALID',
    );
  });
});
