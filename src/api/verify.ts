// The verifier, one part of the public API (src/index.ts exports it all): a front end that only
// verifies imports this part alone, so it does not load the gate, the ledgers and the policy
// engine with it (`gate verify-bundle`, `gate demo`, `gate trust refresh`).
export type * from '../verify/types.js';
export { verifyBundle, type VerifyBundleOptions } from '../verify/verifier.js';
export {
  verifyAttestation,
  attestationOf,
  IN_TOTO_PAYLOAD_TYPE,
  type VerifyAttestationOptions,
} from '../verify/attestation.js';
export {
  loadTrustedRoot,
  trustFromJSON,
  refreshTrustedRootWithTUF,
  DEFAULT_TRUSTED_ROOT_PATH,
  type Trust,
} from '../verify/trust.js';
export {
  compileIdentityRules,
  checkIdentity,
  FULCIO_EXTENSIONS,
  type CompiledIdentityRule,
} from '../verify/identity.js';
export { parseBundle, BUNDLE_MEDIA_TYPES, type ParsedBundle } from '../verify/bundle.js';
export { keyIdOf, normaliseKeyId } from '../verify/key-id.js';
export { parseStatement, matchSubject } from '../verify/statement.js';
export {
  parseDigest,
  parseSubject,
  type ArtifactDigest,
  type ImageRef,
  type Subject,
} from '../subject.js';
