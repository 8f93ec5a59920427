import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gate } from '../../src/gate.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import type { IdentityRule } from '../../src/verify/types.js';
import { verifyBundle } from '../../src/verify/verifier.js';
import {
  DEFAULT_IDENTITY,
  mintDSSEBundle,
  mintMessageBundle,
  type Minted,
} from '../support/mint.js';
import { editBase64JSON, flipByte, mutate } from '../support/mutate.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';
import { bytesOf, evidenceOf, gateOver, hex, requestFor, statementAbout } from './gate-support.js';
import { expectDecision, expectRefused } from './report.js';

/**
 * Attack corpus: what a signed bundle says, and about what. Each case takes a real bundle minted
 * against the local Sigstore services and presents it for something it does not vouch for; each
 * ends in a coded verification error, or a decision that is not an allow.
 */
const ARTIFACT = Buffer.from('the artifact under attack\n');
const OTHER_ARTIFACT = Buffer.from('an artifact the attacker controls\n');
const A = hex(ARTIFACT);
const B = hex(OTHER_ARTIFACT);
const ID: IdentityRule = { san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer };

let svc: LocalSigstore;
let trust: Trust;
let message: Minted;
let dsse: Minted;
const gates: Gate[] = [];

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'attack', 'local');
  [message, dsse] = await Promise.all([
    mintMessageBundle(svc, { artifact: ARTIFACT, version: '0.3', signer: 'keyless' }),
    mintDSSEBundle(svc, { statement: statementAbout([A]), version: '0.3', signer: 'keyless' }),
  ]);
});
afterAll(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await svc?.close();
});

const checkMessage = (bundle: unknown, artifact: Buffer) =>
  verifyBundle(bundle, { trust, identities: [ID], artifact: { bytes: artifact } });
const checkDSSE = (bundle: unknown, artifact = ARTIFACT) =>
  verifyAttestation(bundle, { trust, identities: [ID], subject: { bytes: artifact } });

async function gate(evidence: Buffer[]): Promise<Gate> {
  const g = await gateOver(svc, { evidence: evidence.map((b, i) => evidenceOf(b, i)) });
  gates.push(g);
  return g;
}

describe('signatures over something else', () => {
  it('a signature over another artifact is ARTIFACT_MISMATCH', async () => {
    // a real signature over B, presented for A
    const overB = await mintMessageBundle(svc, {
      artifact: OTHER_ARTIFACT,
      version: '0.3',
      signer: 'keyless',
    });
    expect(checkMessage(overB.bundle, OTHER_ARTIFACT).contentType).toBe('message');
    await expectRefused(
      'signature over another artifact',
      undefined,
      () => checkMessage(overB.bundle, ARTIFACT),
      'ARTIFACT_MISMATCH',
    );
  });

  it('a message digest that differs from the artifact is refused, by bytes and by digest', async () => {
    const edited = mutate(message.bundle, 'messageSignature.messageDigest.digest', () =>
      Buffer.from(B, 'hex').toString('base64'),
    );
    await expectRefused(
      'message digest differs from the artifact (bytes given)',
      undefined,
      () => checkMessage(edited, ARTIFACT),
      'ARTIFACT_MISMATCH',
    );
    // given only B's digest, the bundle's (edited) digest agrees; the signed log body does not
    await expectRefused(
      'message digest differs from the signed one (digest given)',
      undefined,
      () =>
        verifyBundle(edited, {
          trust,
          identities: [ID],
          artifact: { digest: { algorithm: 'sha256', hex: B } },
        }),
      'TLOG_BODY_MISMATCH',
    );
  });

  it('an invalid dsse signature is refused', async () => {
    const flipped = mutate(dsse.bundle, 'dsseEnvelope.signatures.0.sig', (s) =>
      flipByte(s as string),
    );
    await expectRefused(
      'invalid dsse signature',
      undefined,
      () => checkDSSE(flipped),
      'TLOG_BODY_MISMATCH',
    );
    // the same flipped signature with no log entry to disagree with: the signature itself fails
    const unlogged = await mintDSSEBundle(svc, {
      statement: statementAbout([A]),
      version: '0.3',
      signer: 'keyless',
      tlog: false,
      tsa: true,
    });
    await expectRefused(
      'invalid dsse signature (timestamped, not logged)',
      undefined,
      () =>
        verifyAttestation(
          mutate(unlogged.bundle, 'dsseEnvelope.signatures.0.sig', (s) => flipByte(s as string)),
          { trust, identities: [ID], subject: { bytes: ARTIFACT }, tlogThreshold: 0 },
        ),
      'TIMESTAMP_INVALID',
    );
  });
});

describe('envelopes that are not in-toto statements', () => {
  it('a payload type that is not in-toto is DSSE_PAYLOAD_TYPE, after the signature verified', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: statementAbout([A]),
      payloadType: 'application/vnd.cyclonedx+json',
      version: '0.3',
      signer: 'keyless',
    });
    await expectRefused(
      'payload type not in-toto',
      undefined,
      () => checkDSSE(m.bundle),
      'DSSE_PAYLOAD_TYPE',
      /cyclonedx/,
    );
  });

  it('a _type that is not an in-toto Statement is STATEMENT_INVALID', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: { ...statementAbout([A]), _type: 'https://in-toto.io/Link/v1' },
      version: '0.3',
      signer: 'keyless',
    });
    await expectRefused(
      '_type not a Statement',
      undefined,
      () => checkDSSE(m.bundle),
      'STATEMENT_INVALID',
    );
  });

  it('a message signature presented as an attestation is refused (USAGE_ERROR: no artifact to check it over)', async () => {
    await expectRefused(
      'message signature presented as attestation',
      undefined,
      () =>
        verifyAttestation(message.bundle, {
          trust,
          identities: [ID],
          subject: { bytes: ARTIFACT },
        }),
      'USAGE_ERROR',
    );
  });
});

describe('subjects', () => {
  it('no subject matches: every subject is checked, and none is the artifact', async () => {
    const many = Array.from({ length: 20 }, (_, i) => hex(`decoy ${i}`));
    const none = await mintDSSEBundle(svc, {
      statement: statementAbout(many),
      version: '0.3',
      signer: 'keyless',
    });
    await expectRefused(
      'no subject matches (every subject checked)',
      undefined,
      () => checkDSSE(none.bundle),
      'SUBJECT_MISMATCH',
    );
    // every subject is looked at: the artifact as the last of 21 matches
    const last = await mintDSSEBundle(svc, {
      statement: statementAbout([...many, A]),
      version: '0.3',
      signer: 'keyless',
    });
    expect(checkDSSE(last.bundle).matchedSubject.digest).toEqual({ sha256: A });
  });

  it('an attestation for A presented for B: SUBJECT_MISMATCH, and the gate denies B', async () => {
    await expectRefused(
      'attestation for A presented for B (verifier)',
      undefined,
      () => checkDSSE(dsse.bundle, OTHER_ARTIFACT),
      'SUBJECT_MISMATCH',
    );
    const g = await gate([bytesOf(dsse.bundle)]);
    expect((await g.check(requestFor(A))).outcome).toBe('allow');
    const d = await g.check(requestFor(B));
    expectDecision('attestation for A presented for B (gate)', undefined, d, 'deny');
    expect(d.violations.map((v) => v.id)).toEqual(['test.provenance']);
  });
});

describe('required predicate type', () => {
  it('is absent while an attestation of another type exists: deny (CVE-2022-35929, CVE-2022-35930)', async () => {
    const sbom = await mintDSSEBundle(svc, {
      statement: statementAbout([A], 'https://spdx.dev/Document/v2.3', { spdxVersion: 'SPDX-2.3' }),
      version: '0.3',
      signer: 'keyless',
    });
    const g = await gate([bytesOf(sbom.bundle)]);
    const d = await g.check(requestFor(A));
    expectDecision(
      'required predicate type absent, another present',
      'CVE-2022-35929, CVE-2022-35930',
      d,
      'deny',
    );
    // the other attestation verified; it just is not the one the rule requires
    expect(d.evidence.map((e) => e.status)).toEqual(['verified']);
    expect(d.violations.map((v) => v.id)).toEqual(['test.provenance']);
  });
});

describe('a malformed attestation whose parse error could be swallowed (GHSA-w6c6-c85g-mmv6)', () => {
  it('a signed payload that is not json is INPUT_MALFORMED_JSON, not "no attestation"', async () => {
    const m = await mintDSSEBundle(svc, {
      statement: Buffer.from('{"_type": "https://in-toto.io/Statement/v1", "subject": ['),
      version: '0.3',
      signer: 'keyless',
    });
    await expectRefused(
      'malformed signed statement',
      'GHSA-w6c6-c85g-mmv6',
      () => checkDSSE(m.bundle),
      'INPUT_MALFORMED_JSON',
    );
  });

  it('beside a valid attestation, the malformed one is reported with its code and the decision is not an allow', async () => {
    // an attacker adds a malformed copy next to a real, unrelated attestation: the parse
    // error is reported, never read as "nothing wrong here"
    const sbom = await mintDSSEBundle(svc, {
      statement: statementAbout([A], 'https://spdx.dev/Document/v2.3', { spdxVersion: 'SPDX-2.3' }),
      version: '0.3',
      signer: 'keyless',
    });
    const malformedProvenance = mutate(dsse.bundle, 'dsseEnvelope.payload', (p) =>
      editBase64JSON(p as string, (s: any) => ({ ...s, subject: 'not-an-array' })),
    );
    const g = await gate([bytesOf(sbom.bundle), bytesOf(malformedProvenance), Buffer.from('{')]);
    const d = await g.check(requestFor(A));
    const codes = d.evidence.filter((e) => e.status === 'rejected').map((e) => e.code);
    expectDecision(
      'malformed attestation beside a valid one',
      'GHSA-w6c6-c85g-mmv6',
      d,
      'deny',
      undefined,
      codes.join(','),
    );
    expect(codes.length).toBe(2);
    for (const c of codes) expect(c).toMatch(/^[A-Z_]+$/);
  });
});
