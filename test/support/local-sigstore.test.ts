import { createHash } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import {
  Verifier,
  toSignedEntity,
  toTrustMaterial,
  type Signer,
  type VerificationPolicy,
  type VerifierOptions,
} from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULCIO_OIDS } from './fulcio-oids.js';
import {
  DEFAULT_IDENTITY,
  mintDSSEBundle,
  mintMessageBundle,
  verifierKeys,
  type BundleVersion,
  type Minted,
} from './mint.js';
import { editBase64JSON, flipByte, mutate } from './mutate.js';
import {
  startLocalSigstore,
  type LocalSigstore,
  type TrustedRootJSON,
} from './sigstore-services.js';

const ARTIFACT = Buffer.from('gate test artifact\n');
const STATEMENT = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [
    { name: 'a.txt', digest: { sha256: createHash('sha256').update(ARTIFACT).digest('hex') } },
  ],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { buildType: 'https://gate.test/build' } },
};

let svc: LocalSigstore;
beforeAll(async () => {
  svc = await startLocalSigstore();
});
afterAll(async () => {
  await svc?.close();
});

interface VerifyOpts {
  artifact?: Buffer;
  policy?: VerificationPolicy;
  trustedRoot?: TrustedRootJSON;
  options?: VerifierOptions;
}

/** Verifies exactly as the brief prescribes: straight through @sigstore/verify. */
function verify(minted: Minted, o: VerifyOpts = {}): Signer {
  const entity = toSignedEntity(bundleFromJSON(minted.bundle), o.artifact);
  const root = TrustedRoot.fromJSON(o.trustedRoot ?? svc.trustedRoot);
  const verifier = new Verifier(toTrustMaterial(root, verifierKeys(minted)), o.options);
  return verifier.verify(entity, o.policy);
}

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}

const kinds = ['message', 'dsse'] as const;
const versions: BundleVersion[] = ['0.1', '0.2', '0.3'];
const signers = ['keyless', 'key'] as const;
const matrix = kinds.flatMap((kind) =>
  versions.flatMap((version) =>
    signers.flatMap((signer) => [false, true].map((tsa) => ({ kind, version, signer, tsa }))),
  ),
);

describe('minted bundles verify with @sigstore/verify', () => {
  it.each(matrix)('$kind v$version $signer tsa=$tsa', async ({ kind, version, signer, tsa }) => {
    const minted =
      kind === 'message'
        ? await mintMessageBundle(svc, { artifact: ARTIFACT, version, signer, tsa })
        : await mintDSSEBundle(svc, { statement: STATEMENT, version, signer, tsa });
    const artifact = kind === 'message' ? ARTIFACT : undefined;
    const policy: VerificationPolicy | undefined =
      signer === 'keyless'
        ? {
            subjectAlternativeName: DEFAULT_IDENTITY.san,
            extensions: { issuer: DEFAULT_IDENTITY.issuer },
          }
        : undefined;
    const result = verify(minted, { artifact, policy });
    expect(result.key.asymmetricKeyType).toBe('ec');

    const { bundle } = minted;
    const vm = bundle.verificationMaterial;
    expect(bundle.mediaType).toContain(version === '0.3' ? 'v0.3' : `version=${version}`);
    if (signer === 'key') {
      expect(vm.publicKey?.hint).toBe(minted.keyHint);
    } else if (version === '0.3') {
      expect(vm.certificate?.rawBytes).toBeTruthy();
    } else {
      expect(vm.x509CertificateChain?.certificates).toHaveLength(1);
    }
    const [entry] = vm.tlogEntries;
    expect(entry?.kindVersion).toEqual({
      kind: kind === 'message' ? 'hashedrekord' : 'dsse',
      version: '0.0.1',
    });
    expect(entry?.inclusionPromise?.signedEntryTimestamp).toBeTruthy();
    expect(entry?.inclusionProof?.checkpoint.envelope ?? null)[
      version === '0.1' ? 'toBeNull' : 'toBeTruthy'
    ]();
    expect(vm.timestampVerificationData?.rfc3161Timestamps ?? []).toHaveLength(tsa ? 1 : 0);
  });

  it('logs dsse entries in the canonical form real Rekor stores', async () => {
    const minted = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'key',
    });
    const entry = minted.bundle.verificationMaterial.tlogEntries[0];
    const body = JSON.parse(Buffer.from(entry?.canonicalizedBody ?? '', 'base64').toString());
    const env = minted.bundle.dsseEnvelope;
    expect(Object.keys(body.spec).sort()).toEqual(['envelopeHash', 'payloadHash', 'signatures']);
    expect(body.spec.payloadHash).toEqual({
      algorithm: 'sha256',
      value: createHash('sha256')
        .update(minted.payload ?? '')
        .digest('hex'),
    });
    expect(body.spec.signatures).toEqual([
      {
        signature: env?.signatures[0]?.sig,
        verifier: Buffer.from(minted.publicKeyPem ?? '').toString('base64'),
      },
    ]);
  });

  it('writes every requested Fulcio extension and a custom OID', async () => {
    const extensions = Object.fromEntries(
      Object.keys(FULCIO_OIDS)
        .filter((name) => name !== 'issuer')
        .map((name) => [name, `value-of-${name}`]),
    );
    const identity = {
      san: 'signer@gate.test',
      issuer: 'https://issuer.gate.test',
      extensions: { ...extensions, '1.3.6.1.4.1.99999.1': 'custom' },
    };
    const minted = await mintMessageBundle(svc, {
      artifact: ARTIFACT,
      version: '0.3',
      signer: 'keyless',
      identity,
    });
    verify(minted, {
      artifact: ARTIFACT,
      policy: { subjectAlternativeName: identity.san, extensions: { issuer: identity.issuer } },
    });
    const cert = X509Certificate.parse(minted.certificatePem ?? '');
    const value = (oid: string) => cert.extension(oid)?.valueObj.subs[0]?.value.toString('utf8');
    for (const [name, oid] of Object.entries(FULCIO_OIDS)) {
      expect(value(oid)).toBe(name === 'issuer' ? identity.issuer : `value-of-${name}`);
    }
    expect(value('1.3.6.1.4.1.99999.1')).toBe('custom');
    expect(cert.extension('1.3.6.1.4.1.57264.1.1')?.value.toString('utf8')).toBe(identity.issuer);
  });

  it('verifies a TSA-only bundle when no tlog entry is required', async () => {
    const minted = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'keyless',
      tlog: false,
      tsa: true,
    });
    // protobuf JSON omits empty repeated fields, so tlogEntries is absent, not [].
    expect(minted.bundle.verificationMaterial.tlogEntries).toBeUndefined();
    verify(minted, { options: { tlogThreshold: 0 } });
    expect(errorCode(() => verify(minted))).toBe('TLOG_ERROR');
  });

  it('publishes a trusted root with validFor.start and logId = sha256(SPKI)', () => {
    const root = svc.trustedRoot;
    expect(root.mediaType).toBe('application/vnd.dev.sigstore.trustedroot+json;version=0.1');
    for (const log of [...root.tlogs, ...root.ctlogs]) {
      const hash = createHash('sha256').update(Buffer.from(log.publicKey.rawBytes, 'base64'));
      expect(log.logId.keyId).toBe(hash.digest('base64'));
      expect(Date.parse(log.publicKey.validFor.start)).not.toBeNaN();
    }
    for (const ca of [...root.certificateAuthorities, ...root.timestampAuthorities]) {
      expect(Date.parse(ca.validFor.start)).not.toBeNaN();
    }
    expect(() => TrustedRoot.fromJSON(root)).not.toThrow();
  });

  it('mints concurrently without clock or port trouble', async () => {
    const minted = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 2
          ? mintMessageBundle(svc, {
              artifact: ARTIFACT,
              version: '0.3',
              signer: 'keyless',
              tsa: true,
            })
          : mintDSSEBundle(svc, {
              statement: STATEMENT,
              version: '0.2',
              signer: 'keyless',
              tsa: true,
            }),
      ),
    );
    minted.forEach((m, i) => verify(m, { artifact: i % 2 ? ARTIFACT : undefined }));
  });

  it('per-service clocks: a TSA stamping after the certificate expired fails', async () => {
    const skewed = await startLocalSigstore({ clocks: { tsa: () => Date.now() + 11 * 60_000 } });
    try {
      const opts = { statement: STATEMENT, version: '0.3', signer: 'keyless', tsa: true } as const;
      const late = await mintDSSEBundle(skewed, { ...opts, tlog: false });
      const check = () =>
        verify(late, { trustedRoot: skewed.trustedRoot, options: { tlogThreshold: 0 } });
      expect(errorCode(check)).toBe('CERTIFICATE_ERROR');
    } finally {
      await skewed.close();
    }
  });

  it('holds up 30 times in a row for DSSE + TSA (no fractional-second flake)', async () => {
    for (let i = 0; i < 30; i++) {
      const version = versions[i % 3] ?? '0.3';
      const minted = await mintDSSEBundle(svc, {
        statement: STATEMENT,
        version,
        signer: 'keyless',
        tsa: true,
      });
      verify(minted);
    }
  });
});

describe('tampering with one field fails verification', () => {
  let message: Minted;
  let dsse: Minted;
  beforeAll(async () => {
    message = await mintMessageBundle(svc, {
      artifact: ARTIFACT,
      version: '0.3',
      signer: 'keyless',
      tsa: true,
    });
    dsse = await mintDSSEBundle(svc, {
      statement: STATEMENT,
      version: '0.3',
      signer: 'key',
      tsa: true,
    });
  });
  const bundleOf = (m: Minted, b: Minted['bundle']): Minted => ({ ...m, bundle: b });

  it('signer: a flipped signature byte', () => {
    const bad = mutate(dsse.bundle, 'dsseEnvelope.signatures.0.sig', (s) => flipByte(s as string));
    expect(errorCode(() => verify(bundleOf(dsse, bad)))).not.toBe('no error');
    const badMsg = mutate(message.bundle, 'messageSignature.signature', (s) =>
      flipByte(s as string),
    );
    expect(errorCode(() => verify(bundleOf(message, badMsg), { artifact: ARTIFACT }))).not.toBe(
      'no error',
    );
    expect(errorCode(() => verify(message, { artifact: Buffer.from('other') }))).not.toBe(
      'no error',
    );
  });

  it('signer: a changed DSSE payload', () => {
    const bad = mutate(dsse.bundle, 'dsseEnvelope.payload', (p) =>
      editBase64JSON(p as string, (s) => ({ ...(s as object), predicateType: 'x' })),
    );
    expect(errorCode(() => verify(bundleOf(dsse, bad)))).not.toBe('no error');
  });

  it('Rekor: a changed SET', () => {
    const path = 'verificationMaterial.tlogEntries.0.inclusionPromise.signedEntryTimestamp';
    const bad = mutate(dsse.bundle, path, (s) => flipByte(s as string));
    expect(errorCode(() => verify(bundleOf(dsse, bad)))).toBe('TLOG_INCLUSION_PROMISE_ERROR');
  });

  it('Rekor: a changed checkpoint', () => {
    const path = 'verificationMaterial.tlogEntries.0.inclusionProof.checkpoint.envelope';
    const bad = mutate(dsse.bundle, path, (c) => (c as string).replace(/\n1\n/, '\n2\n'));
    expect(bad).not.toEqual(dsse.bundle);
    expect(errorCode(() => verify(bundleOf(dsse, bad)))).toBe('TLOG_INCLUSION_PROOF_ERROR');
  });

  it('TSA: a timestamp over a different signature', () => {
    const path = 'verificationMaterial.timestampVerificationData.rfc3161Timestamps.0';
    const other =
      message.bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0];
    const bad = mutate(dsse.bundle, path, () => other);
    expect(errorCode(() => verify(bundleOf(dsse, bad)))).toBe('TIMESTAMP_ERROR');
  });

  it('Fulcio: a root that does not hold the issuing CA', () => {
    const root = mutate(
      svc.trustedRoot,
      'certificateAuthorities.0.certChain.certificates.0.rawBytes',
      () => svc.trustedRoot.timestampAuthorities[0]?.certChain.certificates[1]?.rawBytes,
    );
    expect(errorCode(() => verify(message, { artifact: ARTIFACT, trustedRoot: root }))).toBe(
      'CERTIFICATE_ERROR',
    );
  });

  it('CT log: an SCT that does not verify under the trusted CT key', () => {
    const root = mutate(
      svc.trustedRoot,
      'ctlogs.0.publicKey.rawBytes',
      () => svc.trustedRoot.tlogs[0]?.publicKey.rawBytes,
    );
    expect(errorCode(() => verify(message, { artifact: ARTIFACT, trustedRoot: root }))).toBe(
      'CERTIFICATE_ERROR',
    );
  });

  it('mutate rejects a path that does not exist', () => {
    expect(() => mutate(dsse.bundle, 'verificationMaterial.nope.x', () => 1)).toThrow(/mutate/);
  });
});
