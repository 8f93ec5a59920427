import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakGlassStatement } from '../../src/breakglass/request.js';
import { createFileSource } from '../../src/collect/files.js';
import { normalise } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { verifyAttestation } from '../../src/verify/attestation.js';
import { verifyEnvelope } from '../../src/verify/envelope.js';
import { trustFromJSON, type Trust } from '../../src/verify/trust.js';
import { FIXTURES } from '../helpers.js';
import { preAuthEncoding } from '../support/local-rekor.js';
import { mintDSSEBundle, IN_TOTO_PAYLOAD_TYPE } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * A key-signed signature's signer is the trusted key that verified it, never the bundle's own
 * (unsigned) publicKey.hint. The attack: one person holding one key signs a break-glass request,
 * signs it a second time labelled with the approver key's hint, and expects an override listing
 * the approver as co-signer.
 */
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const APP = hex('keyed app');

interface Key {
  privateKey: KeyObject;
  pem: string;
  /** cosign's hint form: base64 SHA-256 of the DER SPKI */
  id: string;
  hexId: string;
}

function newKey(): Key {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = createPublicKey(privateKey);
  const digest = createHash('sha256')
    .update(pub.export({ format: 'der', type: 'spki' }))
    .digest();
  return {
    privateKey,
    pem: pub.export({ format: 'pem', type: 'spki' }).toString(),
    id: digest.toString('base64'),
    hexId: digest.toString('hex'),
  };
}

let svc: LocalSigstore;
let trust: Trust;
let dir: string;
const requester = newKey();
const approver = newKey();

beforeAll(async () => {
  svc = await startLocalSigstore();
  trust = trustFromJSON(svc.trustedRoot, 'test', 'local');
  dir = mkdtempSync(path.join(tmpdir(), 'gate-keys-'));
});
afterAll(() => svc.close());

const request = (requesterId: string) =>
  breakGlassStatement({
    subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
    environment: 'production',
    justification: 'customer outage, fix must ship now',
    ticket: 'INC-7',
    requester: requesterId,
    expiresInMinutes: 60,
    now: new Date(),
    requestId: `req-${Math.random().toString(36).slice(2)}`,
  });

async function signed(statement: object, key: Key, keyHint: string) {
  const m = await mintDSSEBundle(svc, {
    statement,
    version: '0.3',
    signer: 'key',
    privateKey: key.privateKey,
    keyHint,
  });
  return { source: 'test', bytes: Buffer.from(JSON.stringify(m.bundle)) };
}

async function gateFor(ids: { requester: string; approver: string }) {
  const config = normalise(
    {
      // Both keys trusted, neither with a configured hint: the bundle's hint is all that names one.
      keys: [{ pem: requester.pem }, { pem: approver.pem }],
      policy: {
        path: path.join(FIXTURES, 'policies', 'requires-provenance'),
        config: {
          break_glass: {
            environments: {
              production: {
                requesters: [{ key_id: ids.requester }],
                approvers: [{ key_id: ids.approver }],
                approvals: 1,
                max_expiry_minutes: 120,
              },
            },
          },
        },
      },
      ledger: { path: path.join(mkdtempSync(path.join(dir, 'l-')), 'ledger.db') },
    },
    dir,
    'test-config',
  );
  const empty = mkdtempSync(path.join(dir, 'ev-'));
  return createGate(config, { trust, sources: () => [createFileSource({ paths: [empty] })] });
}

const check = (
  gate: Awaited<ReturnType<typeof gateFor>>,
  items: Array<{ source: string; bytes: Buffer }>,
) =>
  gate.check({
    subjects: [{ digest: { algorithm: 'sha256', hex: APP } }],
    environment: 'production',
    breakGlass: items,
  });

describe('a key-signed break-glass request', () => {
  it('is not co-signed by a second signature of the same key labelled with the approver hint', async () => {
    const gate = await gateFor({ requester: requester.id, approver: approver.id });
    const statement = request(requester.id);
    const forged = [
      await signed(statement, requester, requester.id),
      await signed(statement, requester, approver.id),
    ];
    const d = await check(gate, forged);
    expect(d.outcome).toBe('deny');
    expect(d.breakGlassRefused?.map((r) => r.code)).toContain('BREAK_GLASS_APPROVALS_MISSING');
    await gate.close();
  });

  it('is co-signed by the approver key, named in hex in the policy data', async () => {
    const gate = await gateFor({ requester: requester.hexId, approver: approver.hexId });
    const statement = request(requester.hexId);
    // the approver's bundle carries no hint at all: every trusted key is tried
    const items = [
      await signed(statement, requester, requester.id),
      await signed(statement, approver, ''),
    ];
    const d = await check(gate, items);
    expect(d.outcome).toBe('override');
    expect(d.override!.signers.sort()).toEqual([requester.id, approver.id].sort());
    await gate.close();
  });
});

describe('the signer of a key-signed attestation', () => {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app', digest: { sha256: APP } }],
    predicateType: 'https://example.com/p/v1',
    predicate: {},
  };
  const keys = () => [{ pem: requester.pem }, { pem: approver.pem }];

  it('is the key that verified, whatever hint the bundle carries', async () => {
    for (const hint of [approver.id, approver.hexId, 'someone-else', '']) {
      const { bytes } = await signed(statement, requester, hint);
      const a = verifyAttestation(bytes, {
        trust,
        keys: keys(),
        subject: { digest: { algorithm: 'sha256', hex: APP } },
      });
      expect(a.signer).toEqual({ kind: 'key', keyId: requester.id });
    }
  });

  it('is named in one form from a bundle and from a bare envelope', async () => {
    const { bytes } = await signed(statement, requester, requester.hexId);
    const fromBundle = verifyAttestation(bytes, {
      trust,
      keys: keys(),
      subject: { digest: { algorithm: 'sha256', hex: APP } },
    });
    const payload = Buffer.from(JSON.stringify(statement));
    const sig = sign(
      'sha256',
      preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload),
      requester.privateKey,
    );
    const envelope = {
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: payload.toString('base64'),
      // an unsigned keyid naming the other key changes nothing
      signatures: [{ keyid: approver.hexId, sig: sig.toString('base64') }],
    };
    const fromEnvelope = verifyEnvelope(Buffer.from(JSON.stringify(envelope)), {
      keys: keys(),
      subject: { digest: { algorithm: 'sha256', hex: APP } },
    });
    expect(fromEnvelope.signer).toEqual(fromBundle.signer);
    expect(fromBundle.signer.keyId).toBe(requester.id);
  });

  it('is refused when no trusted key verifies the signature', async () => {
    const stranger = newKey();
    const { bytes } = await signed(statement, stranger, requester.id);
    expect(() =>
      verifyAttestation(bytes, {
        trust,
        keys: keys(),
        subject: { digest: { algorithm: 'sha256', hex: APP } },
      }),
    ).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });
});
