import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBoundedFile, parseJSON } from '../../src/util/input.js';
import { parseBundle } from '../../src/verify/bundle.js';
import { expectCode, FIXTURES } from '../helpers.js';

const HAPPY = path.join(
  FIXTURES,
  'sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json',
);
const happy = () => JSON.parse(readFileSync(HAPPY, 'utf8')) as Record<string, any>;

describe('parseBundle', () => {
  it('reads a v0.3 bundle and reports its version and digest', () => {
    const bytes = readFileSync(HAPPY);
    const parsed = parseBundle(bytes);
    expect(parsed.version).toBe('0.3');
    expect(parsed.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(parsed.bundle.content.$case).toBe('messageSignature');
  });

  describe('when the input is not a bundle', () => {
    it('rejects malformed json', () =>
      expectCode(() => parseBundle('{"mediaType":'), 'INPUT_MALFORMED_JSON'));
    it('rejects a json array', () => expectCode(() => parseBundle('[]'), 'BUNDLE_INVALID'));
    it('rejects json null', () => expectCode(() => parseBundle('null'), 'BUNDLE_INVALID'));
    it('rejects an unknown media type', () => {
      const b = happy();
      b.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.9';
      expectCode(
        () => parseBundle(JSON.stringify(b)),
        'BUNDLE_UNSUPPORTED_MEDIA_TYPE',
        /version=0\.9/,
      );
    });
    it('rejects a missing media type', () => {
      const b = happy();
      delete b.mediaType;
      expectCode(() => parseBundle(b), 'BUNDLE_UNSUPPORTED_MEDIA_TYPE', /missing/);
    });
  });

  describe('when a bytes field is not strict base64', () => {
    for (const bad of ['MEUC!IQ==', 'abcde', 'QUJD=QUJD', 'a b c d']) {
      it(`rejects signature ${JSON.stringify(bad)}`, () => {
        const b = happy();
        b.messageSignature.signature = bad;
        expectCode(() => parseBundle(b), 'BUNDLE_BAD_BASE64', /messageSignature\.signature/);
      });
    }
    it('rejects a corrupted inclusion proof hash', () => {
      const b = happy();
      b.verificationMaterial.tlogEntries[0].inclusionProof.hashes[0] = '%%%';
      expectCode(() => parseBundle(b), 'BUNDLE_BAD_BASE64', /hashes\.0/);
    });
    it('rejects a number where base64 belongs', () => {
      const b = happy();
      b.verificationMaterial.certificate.rawBytes = 42;
      expectCode(() => parseBundle(b), 'BUNDLE_INVALID', /rawBytes/);
    });
    it('accepts unpadded base64url', () => {
      const b = happy();
      b.messageSignature.signature = Buffer.from(b.messageSignature.signature, 'base64').toString(
        'base64url',
      );
      expect(parseBundle(b).bundle.content.$case).toBe('messageSignature');
    });
  });

  describe('when the verification material is wrong', () => {
    it('rejects an empty certificate chain', () => {
      const b = happy();
      delete b.verificationMaterial.certificate;
      b.verificationMaterial.x509CertificateChain = { certificates: [] };
      expectCode(() => parseBundle(b), 'BUNDLE_EMPTY_CHAIN');
    });
    it('rejects a bundle without any key material', () => {
      const b = happy();
      delete b.verificationMaterial.certificate;
      expectCode(() => parseBundle(b), 'BUNDLE_INVALID', /no certificate/);
    });
    it('rejects a bundle with both a message signature and an envelope', () => {
      const b = happy();
      b.dsseEnvelope = { payload: 'e30=', payloadType: 'x', signatures: [] };
      expectCode(() => parseBundle(b), 'BUNDLE_INVALID', /exactly one/);
    });
    it('rejects a v0.3 bundle that carries a chain', () => {
      const b = happy();
      b.verificationMaterial.x509CertificateChain = {
        certificates: [b.verificationMaterial.certificate],
      };
      delete b.verificationMaterial.certificate;
      expectCode(() => parseBundle(b), 'BUNDLE_INVALID', /verificationMaterial/);
    });
  });
});

describe('bounded input', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-input-'));
  it('rejects a file over the size limit before reading it', () => {
    const file = path.join(dir, 'big.json');
    writeFileSync(file, Buffer.alloc(2048, 0x20));
    expectCode(
      () => readBoundedFile(file, 1024, 'bundle'),
      'INPUT_TOO_LARGE',
      /over the limit of 1024/,
    );
  });
  it('rejects a missing file with its path', () => {
    expectCode(
      () => readBoundedFile(path.join(dir, 'nope.json')),
      'INPUT_UNREADABLE',
      /no such file/,
    );
  });
  it('rejects a directory', () =>
    expectCode(() => readBoundedFile(dir), 'INPUT_UNREADABLE', /directory/));
  it('rejects oversized json text', () =>
    expectCode(() => parseJSON('[1]', 'x', 2), 'INPUT_TOO_LARGE'));
});
