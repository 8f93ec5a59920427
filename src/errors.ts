/**
 * One base error with a stable `code`. Codes are the public contract: callers (the CLI, the
 * server, the policy input's rejection list) match on `err.code`, never on the message.
 * Messages are one lowercase line that says what was expected and what was found.
 */
export type GateErrorCode =
  // input that is not what it claims to be
  | 'INPUT_TOO_LARGE'
  | 'INPUT_UNREADABLE'
  | 'INPUT_MALFORMED_JSON'
  | 'INPUT_TOO_DEEP'
  | 'USAGE_ERROR'
  // gate serve would expose a route without its protection (token, tls)
  | 'SERVE_UNPROTECTED'
  | 'CONFIG_INVALID'
  | 'LEDGER_UNAVAILABLE'
  // audit ledger verification (gate audit verify): what an auditor's check found
  | 'LEDGER_CHAIN_BROKEN'
  | 'LEDGER_INDEX_MISMATCH'
  | 'LEDGER_CHECKPOINT_INVALID'
  | 'LEDGER_CHECKPOINT_MISSING'
  | 'LEDGER_FORKED'
  | 'LEDGER_TRUNCATED'
  // a break-glass request already used by a recorded override (single use)
  | 'BREAK_GLASS_REPLAYED'
  // a break-glass request past its expiry, refused before anyone co-signs it
  | 'BREAK_GLASS_EXPIRED'
  // signing a break-glass request or approval (gate break-glass request --sign, approve)
  | 'SIGN_NO_IDENTITY_TOKEN'
  | 'SIGN_IDENTITY_TOKEN_INVALID'
  | 'SIGN_OIDC_FLOW_FAILED'
  | 'SIGN_FULCIO_FAILED'
  | 'SIGN_REKOR_FAILED'
  | 'SIGN_TSA_FAILED'
  | 'SIGN_KEY_INVALID'
  | 'SIGN_SIGNER_MISMATCH'
  | 'SIGN_FAILED'
  | 'NOTIFY_UNAVAILABLE'
  // bundle shape
  | 'BUNDLE_INVALID'
  | 'BUNDLE_UNSUPPORTED_MEDIA_TYPE'
  | 'BUNDLE_BAD_BASE64'
  | 'BUNDLE_EMPTY_CHAIN'
  // trust material
  | 'TRUST_ROOT_INVALID'
  | 'TRUST_ROOT_UNAVAILABLE'
  // cryptographic verification
  | 'SIGNATURE_INVALID'
  | 'CERTIFICATE_INVALID'
  | 'TLOG_INVALID'
  | 'TLOG_BODY_MISMATCH'
  | 'TLOG_INCLUSION_MISSING'
  | 'TIMESTAMP_INVALID'
  | 'PUBLIC_KEY_INVALID'
  | 'ARTIFACT_MISMATCH'
  | 'DIGEST_UNSUPPORTED'
  | 'VERIFICATION_FAILED'
  // signer identity
  | 'IDENTITY_MISMATCH'
  | 'IDENTITY_RULE_INVALID'
  // DSSE and in-toto
  | 'DSSE_PAYLOAD_TYPE'
  | 'STATEMENT_INVALID'
  | 'SUBJECT_MISMATCH'
  // policies
  | 'OPA_UNAVAILABLE'
  | 'POLICY_BUILD_FAILED'
  | 'POLICY_LOAD_FAILED'
  | 'POLICY_EVAL_FAILED'
  | 'POLICY_UNDEFINED'
  | 'POLICY_OUTPUT_INVALID'
  | 'POLICY_INPUT_INVALID'
  // collecting evidence
  | 'SOURCE_UNREACHABLE'
  | 'SOURCE_TIMEOUT'
  | 'SOURCE_BAD_RESPONSE'
  | 'SOURCE_TOO_LARGE'
  | 'SOURCE_LIMIT_EXCEEDED'
  | 'EVIDENCE_MALFORMED'
  | 'EVIDENCE_CONTENT_MISSING'
  | 'EVIDENCE_NOT_ATTESTATION'
  | 'EVIDENCE_DATA_MISMATCH'
  // OCI registries: what a registry served is not what it claims to be
  | 'SOURCE_AUTH_FAILED'
  | 'SOURCE_INSECURE_TRANSPORT'
  | 'OCI_DIGEST_MISMATCH'
  | 'OCI_MANIFEST_INVALID'
  | 'OCI_REFERRER_MISMATCH'
  | 'IMAGE_NOT_FOUND';

export class GateError extends Error {
  readonly code: GateErrorCode;

  constructor(code: GateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GateError';
  }

  toJSON(): { code: GateErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Errors raised while checking evidence: signatures, chains, logs, identities, statements. */
export class VerifyError extends GateError {
  constructor(code: GateErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'VerifyError';
  }
}

/** Errors raised while building, loading or evaluating a policy: each means "could not decide". */
export class PolicyError extends GateError {
  constructor(code: GateErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PolicyError';
  }
}

export function isGateError(err: unknown): err is GateError {
  return err instanceof GateError;
}

/** Turns anything thrown into a GateError; a foreign error is kept as `cause`. */
export function toGateError(
  err: unknown,
  fallback: GateErrorCode = 'VERIFICATION_FAILED',
): GateError {
  if (err instanceof GateError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GateError(fallback, lowerFirst(message), { cause: err });
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}
