// The audit ledger, one part of the public API (src/index.ts exports it all), for auditors and
// tools: open, query, verify, replay. A front end that only reads the ledger imports this part.
export type {
  AuditLedger,
  Ledger,
  LedgerQuery,
  LedgerVerifyOptions,
  VerifiableLedger,
} from '../audit/ledger.js';
export { openAuditLedger, openLedger, openLedgerToVerify } from '../audit/open.js';
export { policyStoreFor, type PolicyStore, type StoredPolicy } from '../audit/policy-store.js';
export { recordedInput, type Checkpoint, type LedgerRecord } from '../audit/record.js';
export {
  createReplayer,
  type Replay,
  type ReplayOptions,
  type Verdict as ReplayVerdict,
} from '../audit/replay.js';
export { parseCheckpoints, verifyDefaults } from '../audit/verify-ledger.js';
export type { ChainVerification } from '../audit/verify-chain.js';
export { createJsonlLedger } from '../audit/jsonl.js';
export { MAX_JSONL_LIMIT, readDecisions } from '../audit/jsonl-reader.js';
