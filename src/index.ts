export * from './errors.js';
export type * from './verify/types.js';
export { verifyBundle, type VerifyBundleOptions } from './verify/verifier.js';
export {
  verifyAttestation,
  attestationOf,
  IN_TOTO_PAYLOAD_TYPE,
  type VerifyAttestationOptions,
} from './verify/attestation.js';
export {
  loadTrustedRoot,
  trustFromJSON,
  refreshTrustedRootWithTUF,
  DEFAULT_TRUSTED_ROOT_PATH,
  type Trust,
} from './verify/trust.js';
export {
  compileIdentityRules,
  checkIdentity,
  FULCIO_EXTENSIONS,
  type CompiledIdentityRule,
} from './verify/identity.js';
export { parseBundle, BUNDLE_MEDIA_TYPES, type ParsedBundle } from './verify/bundle.js';
export { parseStatement, matchSubject } from './verify/statement.js';
export { parseDigest, parseSubject, type ArtifactDigest, type Subject } from './subject.js';
