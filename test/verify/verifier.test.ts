import { createHash, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { compileIdentityRules } from '../../src/verify/identity.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { IdentityRule } from '../../src/verify/types.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import { expectCode } from '../helpers.js';
import {
  DEFAULT_IDENTITY,
  mintDSSEBundle,
  mintMessageBundle,
  type BundleVersion,
  type Minted,
} from '../support/mint.js';
import { editBase64JSON, flipByte, mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The gate's verifier against bundles minted at test time by real signing: an ephemeral CA, CT
 * log, Rekor v1 log and TSA served on 127.0.0.1. Each negative case changes one field of a valid
 * bundle and names the code it must fail with.
 */
const ARTIFACT = Buffer.from('gate test artifact\n');
const SHA256 = createHash('sha256').update(ARTIFACT).digest('hex');
const SHA512 = createHash('sha512').update(ARTIFACT).digest('hex');
const ID: IdentityRule = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };
const statement = (digest: Record<string, string> = { sha256: SHA256 }) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [
    { name: 'other', digest: { sha256: 'f'.repeat(64) } },
    { name: 'app.tar.gz', digest },
  ],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
});

let svc: LocalSigstore;
let trust: Trust;
const keyOf = (m: Minted) => [{ pem: m.publicKeyPem!, hint: m.keyHint }];

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
});
afterAll(() => svc.close());

describe('when the bundle is valid', () => {
  const versions: BundleVersion[] = ['0.1', '0.2', '0.3'];
  for (const version of versions) {
    for (const tsa of [false, true]) {
      const label = `v${version}${tsa ? ' with a tsa timestamp' : ''}`;

      it(`verifies a keyless message signature, ${label}, by bytes and by digest`, async () => {
        const m = await mintMessageBundle(svc, {
          artifact: ARTIFACT,
          version,
          signer: 'keyless',
          tsa,
        });
        const byBytes = verifyBundle(m.bundle, {
          trust,
          identities: [ID],
          artifact: { bytes: ARTIFACT },
        });
        const byDigest = verifyBundle(m.bundle, {
          trust,
          identities: [ID],
          artifact: { digest: { algorithm: 'sha256', hex: SHA256 } },
        });
        for (const v of [byBytes, byDigest]) {
          expect(v.contentType).toBe('message');
          expect(v.signer).toMatchObject({ kind: 'keyless', identity: ID.san, issuer: ID.issuer });
          expect(v.logEntries[0]).toMatchObject({ kind: 'hashedrekord', version: '0.0.1' });
          expect(v.timestamps.map((t) => t.source).sort()).toEqual(
            tsa ? ['timestamp-authority', 'transparency-log'] : ['transparency-log'],
          );
        }
      });

      it(`verifies a key-signed dsse attestation, ${label}`, async () => {
        const m = await mintDSSEBundle(svc, {
          statement: statement(),
          version,
          signer: 'key',
          tsa,
        });
        const a = verifyAttestation(m.bundle, {
          trust,
          keys: keyOf(m),
          subject: { bytes: ARTIFACT },
        });
        // the bundle's hint is the hex form; the gate reports cosign's hint form of the same key
        expect(a.signer).toEqual({
          kind: 'key',
          keyId: Buffer.from(m.keyHint!, 'hex').toString('base64'),
        });
        expect(a.matchedSubject.name).toBe('app.tar.gz');
        expect(a.predicateType).toBe('https://slsa.dev/provenance/v1');
        expect(a.logEntries[0]).toMatchObject({ kind: 'dsse', version: '0.0.1' });
        expect(a.bundleDigest).toMatch(/^[0-9a-f]{64}$/);
      });
    }
  }

  it('verifies a keyless attestation by a sha512 subject and reports every fulcio extension', async () => {
    const identity = {
      ...DEFAULT_IDENTITY,
      extensions: {
        sourceRepositoryURI: 'https://github.com/gate-test/app',
        sourceRepositoryRef: 'refs/heads/main',
        sourceRepositoryDigest: 'a'.repeat(40),
        buildConfigURI:
          'https://github.com/gate-test/app/.github/workflows/release.yml@refs/heads/main',
        runnerEnvironment: 'github-hosted',
      },
    };
    const m = await mintDSSEBundle(svc, {
      statement: statement({ sha512: SHA512 }),
      version: '0.3',
      signer: 'keyless',
      identity,
    });
    const rules = compileIdentityRules([
      {
        ...ID,
        extensions: { sourceRepositoryRef: 'refs/heads/main', runnerEnvironment: 'github-hosted' },
      },
    ]);
    const a = verifyAttestation(m.bundle, {
      trust,
      identities: rules,
      subject: { digest: { algorithm: 'sha512', hex: SHA512 } },
    });
    expect(a.signer.extensions).toMatchObject({ ...identity.extensions, issuer: ID.issuer });
    const wrongRef = compileIdentityRules([
      { ...ID, extensions: { sourceRepositoryRef: 'refs/heads/dev' } },
    ]);
    expectCode(
      () =>
        verifyAttestation(m.bundle, { trust, identities: wrongRef, subject: { bytes: ARTIFACT } }),
      'IDENTITY_MISMATCH',
      /sourceRepositoryRef/,
    );
  });

  it('verifies a key-signed message by digest alone (ecdsa over the pre-hashed message)', async () => {
    const m = await mintMessageBundle(svc, { artifact: ARTIFACT, version: '0.3', signer: 'key' });
    const v = verifyBundle(m.bundle, {
      trust,
      keys: keyOf(m),
      artifact: { digest: { algorithm: 'sha256', hex: SHA256 } },
    });
    expect(v.signer.kind).toBe('key');
  });
});

describe('when one field of a valid bundle is changed', () => {
  let message: Minted;
  let dsse: Minted;
  let keyed: Minted;
  beforeAll(async () => {
    message = await mintMessageBundle(svc, {
      artifact: ARTIFACT,
      version: '0.3',
      signer: 'keyless',
      tsa: true,
    });
    dsse = await mintDSSEBundle(svc, { statement: statement(), version: '0.3', signer: 'keyless' });
    keyed = await mintDSSEBundle(svc, { statement: statement(), version: '0.2', signer: 'key' });
  });
  const checkMessage = (b: unknown, artifact = ARTIFACT) =>
    verifyBundle(b, { trust, identities: [ID], artifact: { bytes: artifact } });
  const checkDSSE = (b: unknown) =>
    verifyAttestation(b, { trust, identities: [ID], subject: { bytes: ARTIFACT } });

  // the tsa timestamp covers the signature, so it is the first check to fail
  it('rejects a flipped signature byte', () =>
    expectCode(
      () =>
        checkMessage(
          mutate(message.bundle, 'messageSignature.signature', (s) => flipByte(s as string)),
        ),
      'TIMESTAMP_INVALID',
    ));

  it('rejects another artifact', () =>
    expectCode(
      () => checkMessage(message.bundle, Buffer.from('something else')),
      'ARTIFACT_MISMATCH',
    ));

  it('rejects another digest, given only a digest', () =>
    expectCode(
      () =>
        verifyBundle(message.bundle, {
          trust,
          identities: [ID],
          artifact: { digest: { algorithm: 'sha256', hex: '0'.repeat(64) } },
        }),
      'ARTIFACT_MISMATCH',
    ));

  it('rejects a message digest that is not the signed one, even when the log agrees with the bundle', () =>
    expectCode(
      () =>
        verifyBundle(
          mutate(message.bundle, 'messageSignature.messageDigest.digest', () =>
            Buffer.alloc(32, 1).toString('base64'),
          ),
          {
            trust,
            identities: [ID],
            artifact: { digest: { algorithm: 'sha256', hex: '01'.repeat(32) } },
          },
        ),
      'TLOG_BODY_MISMATCH',
    ));

  it('rejects a changed signed entry timestamp', () =>
    expectCode(
      () =>
        checkMessage(
          mutate(
            message.bundle,
            'verificationMaterial.tlogEntries.0.inclusionPromise.signedEntryTimestamp',
            (s) => flipByte(s as string),
          ),
        ),
      'TLOG_INVALID',
    ));

  it('rejects a changed checkpoint', () =>
    expectCode(
      () =>
        checkMessage(
          mutate(
            message.bundle,
            'verificationMaterial.tlogEntries.0.inclusionProof.checkpoint.envelope',
            (e) => String(e).replace(/\n\d+\n/, '\n7\n'),
          ),
        ),
      'TLOG_INVALID',
    ));

  it('rejects a changed integrated time', () =>
    expectCode(
      () =>
        checkMessage(
          mutate(message.bundle, 'verificationMaterial.tlogEntries.0.integratedTime', (t) =>
            String(Number(t) + 1),
          ),
        ),
      'TLOG_INVALID',
    ));

  it('rejects a bundle without log entries', () =>
    expectCode(
      () => checkMessage(mutate(message.bundle, 'verificationMaterial.tlogEntries', () => [])),
      'TLOG_INVALID',
      /expected 1 tlog entries, got 0/,
    ));

  it('rejects a tsa timestamp swapped for garbage', () =>
    expectCode(
      () =>
        checkMessage(
          mutate(
            message.bundle,
            'verificationMaterial.timestampVerificationData.rfc3161Timestamps.0.signedTimestamp',
            (s) => flipByte(s as string, -8),
          ),
        ),
      'TIMESTAMP_INVALID',
    ));

  it('rejects a certificate from another ca', async () => {
    const other = await startLocalSigstore();
    try {
      const foreign = await mintMessageBundle(other, {
        artifact: ARTIFACT,
        version: '0.3',
        signer: 'keyless',
      });
      expectCode(() => checkMessage(foreign.bundle), 'CERTIFICATE_INVALID');
    } finally {
      await other.close();
    }
  });

  it('rejects a changed dsse payload', () =>
    expectCode(
      () =>
        checkDSSE(
          mutate(dsse.bundle, 'dsseEnvelope.payload', (p) =>
            editBase64JSON(p as string, (s: any) => ({
              ...s,
              predicateType: 'https://evil.example/v1',
            })),
          ),
        ),
      'TLOG_BODY_MISMATCH',
    ));

  it('rejects a changed dsse payload type', () =>
    expectCode(
      () => checkDSSE(mutate(dsse.bundle, 'dsseEnvelope.payloadType', () => 'text/plain')),
      'SIGNATURE_INVALID',
    ));

  it('rejects a second dsse signature', () =>
    expectCode(
      () =>
        checkDSSE(
          mutate(dsse.bundle, 'dsseEnvelope.signatures', (s) => [
            ...(s as unknown[]),
            ...(s as unknown[]),
          ]),
        ),
      'BUNDLE_INVALID',
    ));

  it('rejects a statement about another artifact', () =>
    expectCode(
      () =>
        verifyAttestation(dsse.bundle, {
          trust,
          identities: [ID],
          subject: { bytes: Buffer.from('other') },
        }),
      'SUBJECT_MISMATCH',
    ));

  it('rejects the wrong trusted key', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expectCode(
      () =>
        verifyAttestation(keyed.bundle, { trust, keys: [{ pem }], subject: { bytes: ARTIFACT } }),
      'SIGNATURE_INVALID',
    );
  });

  it('tries the keys when the hint names none of them, and reports the one that verified', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    const a = verifyAttestation(keyed.bundle, {
      trust,
      keys: [{ pem: other }, { pem: keyed.publicKeyPem!, hint: 'other' }],
      subject: { bytes: ARTIFACT },
    });
    expect(a.signer.keyId).toBe(Buffer.from(keyed.keyHint!, 'hex').toString('base64'));
  });

  it('tries at most 16 keys when the hint names none of them', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: statement(),
      version: '0.3',
      signer: 'key',
      keyHint: 'unknown',
    });
    const others = Array.from({ length: 16 }, () => ({
      pem: generateKeyPairSync('ec', { namedCurve: 'P-256' })
        .publicKey.export({ format: 'pem', type: 'spki' })
        .toString(),
    }));
    const keys = [...others, { pem: m.publicKeyPem! }];
    expectCode(
      () => verifyAttestation(m.bundle, { trust, keys, subject: { bytes: ARTIFACT } }),
      'PUBLIC_KEY_INVALID',
      /more than the 16 the gate tries/,
    );
    // within the bound the key is found
    const a = verifyAttestation(m.bundle, {
      trust,
      keys: keys.slice(1),
      subject: { bytes: ARTIFACT },
    });
    expect(a.signer.kind).toBe('key');
  });

  it('rejects a keyless bundle when only keys are given', () =>
    expectCode(
      () =>
        verifyAttestation(dsse.bundle, { trust, keys: keyOf(keyed), subject: { bytes: ARTIFACT } }),
      'IDENTITY_MISMATCH',
    ));

  it('rejects an attestation whose trusted root lacks the log', () => {
    const root = svc.trustedRoot;
    root.tlogs = [];
    const noLog = trustFromJSON(root, 'x', 'no-log');
    expectCode(
      () =>
        verifyAttestation(dsse.bundle, {
          trust: noLog,
          identities: [ID],
          subject: { bytes: ARTIFACT },
        }),
      'TLOG_INVALID',
    );
  });
});

describe('when the envelope is not an in-toto statement', () => {
  it('rejects another payload type after verifying the signature', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: statement(),
      payloadType: 'application/json',
      version: '0.3',
      signer: 'key',
    });
    expectCode(
      () => verifyAttestation(m.bundle, { trust, keys: keyOf(m), subject: { bytes: ARTIFACT } }),
      'DSSE_PAYLOAD_TYPE',
      /application\/json/,
    );
  });

  it('rejects a signed statement that fails the schema', async () => {
    const bad = { ...statement(), subject: [] };
    const m = await mintDSSEBundle(svc, { statement: bad, version: '0.3', signer: 'key' });
    expectCode(
      () => verifyAttestation(m.bundle, { trust, keys: keyOf(m), subject: { bytes: ARTIFACT } }),
      'STATEMENT_INVALID',
    );
  });

  it('rejects a signed payload that is not json', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: Buffer.from('not json'),
      version: '0.3',
      signer: 'key',
    });
    expectCode(
      () => verifyAttestation(m.bundle, { trust, keys: keyOf(m), subject: { bytes: ARTIFACT } }),
      'INPUT_MALFORMED_JSON',
    );
  });
});
