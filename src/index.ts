// The public API of @gate/gate: the gate itself (decide on subjects from configured evidence),
// then the verifier it is built on, for those who only verify. The HTTP server is
// `@gate/gate/server`. A test pins this surface (test/package/public-api.test.ts). The verifier,
// the ledger, break glass and policies are kept in parts under api/ (each re-exported whole
// here), so that a front end using one part loads it alone (issue 11: the CLI's cold start).
export { createGate, type Gate, type GateDeps } from './gate.js';
export type { CheckRequest } from './request.js';
export { loadConfig, type GateConfig, type Environment } from './config.js';
export type { Decision, EvidenceReport, Outcome } from './decision.js';
export { VSA_PREDICATE_TYPE, type SignedSummary } from './vsa.js';
export * from './errors.js';
export * from './api/verify.js';
export { parseImageReference, type ImageReference } from './collect/oci-image.js';

// The audit ledger, for auditors and tools: open, query, verify, replay.
export * from './api/audit.js';

// Break glass: the statement a requester signs.
export * from './api/breakglass.js';

// Policies: load a compiled policy and evaluate an input yourself.
export * from './api/policy.js';
