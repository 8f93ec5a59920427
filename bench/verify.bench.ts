import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { bench, describe } from 'vitest';
import { verifyAttestation } from '../src/verify/attestation.js';
import { compileIdentityRules } from '../src/verify/identity.js';
import { DEFAULT_TRUSTED_ROOT_PATH, loadTrustedRoot } from '../src/verify/trust.js';
import { verifyBundle } from '../src/verify/verifier.js';

/**
 * The gate's verifier side by side with @sigstore/verify alone on the same real bundles and the
 * same trusted root: the ratio is the cost of the gate's stricter parsing and its own checks.
 */
const FIXTURES = new URL('../test/fixtures/', import.meta.url).pathname;
const suite = path.join(FIXTURES, 'sigstore-conformance', 'bundle-verify');
const messageBundle = readFileSync(path.join(suite, 'happy-path-v0.3', 'bundle.sigstore.json'));
const artifact = readFileSync(path.join(suite, 'a.txt'));
const dsseBundle = readFileSync(
  path.join(FIXTURES, 'sigstore-js', 'bundles', 'bundleV03-dsse.sigstore'),
);
const SUBJECT =
  '7bea9f6e7ff37f5fab0b36bf061200fff03099fd2fd696b91d04bc5e4f225eb9fd6e0cadcad54ba980f43fb352a99e8810b4e0abeb5c0ef2cf9108cd1f258b36';

const trust = loadTrustedRoot();
const libVerifier = new Verifier(
  toTrustMaterial(
    TrustedRoot.fromJSON(JSON.parse(readFileSync(DEFAULT_TRUSTED_ROOT_PATH, 'utf8'))),
  ),
);
const beacon = compileIdentityRules([
  {
    san: 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
  },
]);
const npm = compileIdentityRules([
  { san: 'brian@dehamer.com', issuer: 'https://github.com/login/oauth' },
]);

describe('message signature bundle (v0.3, rekor v1)', () => {
  bench('@sigstore/verify alone', () => {
    const entity = toSignedEntity(
      bundleFromJSON(JSON.parse(messageBundle.toString('utf8'))),
      artifact,
    );
    libVerifier.verify(entity, {
      subjectAlternativeName: beacon[0]!.rule.san!,
      extensions: { issuer: beacon[0]!.rule.issuer },
    });
  });
  bench('gate verifyBundle, artifact bytes', () => {
    verifyBundle(messageBundle, { trust, identities: beacon, artifact: { bytes: artifact } });
  });
});

describe('dsse attestation (v0.3, real npm publish statement)', () => {
  bench('@sigstore/verify alone (no statement or subject check)', () => {
    const entity = toSignedEntity(bundleFromJSON(JSON.parse(dsseBundle.toString('utf8'))));
    libVerifier.verify(entity, {
      subjectAlternativeName: 'brian@dehamer.com',
      extensions: { issuer: 'https://github.com/login/oauth' },
    });
  });
  bench('gate verifyAttestation by subject digest', () => {
    verifyAttestation(dsseBundle, {
      trust,
      identities: npm,
      subject: { digest: { algorithm: 'sha512', hex: SUBJECT } },
    });
  });
});
