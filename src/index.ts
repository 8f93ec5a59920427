// The public API of @gate/gate: the gate itself (decide on subjects from configured evidence),
// then the verifier it is built on, for those who only verify. The HTTP server is
// `@gate/gate/server`. A test pins this surface (test/package/public-api.test.ts).
export { createGate, type Gate, type GateDeps } from './gate.js';
export type { CheckRequest } from './request.js';
export { loadConfig, type GateConfig, type Environment } from './config.js';
export type { Decision, EvidenceReport, Outcome } from './decision.js';
export { VSA_PREDICATE_TYPE, type SignedSummary } from './vsa.js';
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
export {
  parseDigest,
  parseSubject,
  type ArtifactDigest,
  type ImageRef,
  type Subject,
} from './subject.js';
export { parseImageReference, type ImageReference } from './collect/oci-image.js';

// The audit ledger, for auditors and tools: open, query, verify, replay.
export type {
  AuditLedger,
  Ledger,
  LedgerQuery,
  LedgerVerifyOptions,
  VerifiableLedger,
} from './audit/ledger.js';
export { openAuditLedger, openLedger, openLedgerToVerify } from './audit/open.js';
export { policyStoreFor, type PolicyStore, type StoredPolicy } from './audit/policy-store.js';
export { recordedInput, type Checkpoint, type LedgerRecord } from './audit/record.js';
export {
  createReplayer,
  type Replay,
  type ReplayOptions,
  type Verdict as ReplayVerdict,
} from './audit/replay.js';
export { parseCheckpoints, verifyDefaults } from './audit/verify-ledger.js';
export type { ChainVerification } from './audit/verify-chain.js';
export { createJsonlLedger } from './audit/jsonl.js';
export { MAX_JSONL_LIMIT, readDecisions } from './audit/jsonl-reader.js';

// Break glass: the statement a requester signs.
export { breakGlassStatement } from './breakglass/request.js';
export { BREAK_GLASS_PREDICATE_TYPE, type BreakGlassPredicate } from './breakglass/types.js';

// Policies: load a compiled policy and evaluate an input yourself.
export { loadCompiledPolicy, DEFAULT_POLICY_PATH, type CompiledPolicy } from './evaluate/policy.js';
export { checkPolicyInput, type PolicyInput } from './evaluate/input.js';
export type { PolicyResult, RuleResult } from './evaluate/output.js';
