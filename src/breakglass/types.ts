export const BREAK_GLASS_PREDICATE_TYPE = 'https://gate.dev/attestation/break-glass/v1';

/** The predicate of a break-glass request (schemas/break-glass-predicate.schema.json). */
export interface BreakGlassPredicate {
  requestId: string;
  environment: string;
  justification: string;
  ticket: string;
  requester: string;
  requestedAt: string;
  expiresAt: string;
}

/** An identity in policy data: the same shape the default library uses for signers. */
export interface DataIdentity {
  san?: string;
  san_regexp?: string;
  issuer?: string;
  key_id?: string;
}

/** data.gate.config.break_glass.environments[env]: who may break glass and how. */
export interface BreakGlassRule {
  requesters: DataIdentity[];
  approvers?: DataIdentity[];
  /** distinct approvers, other than the requester, who must co-sign (default 0) */
  approvals?: number;
  /** the longest allowed time from signing to expiry */
  max_expiry_minutes: number;
  /**
   * How often one request may override: `until_expiry` (the default) wherever the gate answers
   * (gate check, POST /v1/decisions, admission) until it expires or is revoked; `single` once.
   */
  reuse?: BreakGlassReuse;
}

export type BreakGlassReuse = 'until_expiry' | 'single';

export type BreakGlassRefusalCode =
  | 'BREAK_GLASS_INVALID'
  | 'BREAK_GLASS_NOT_CONFIGURED'
  | 'BREAK_GLASS_UNAUTHORIZED'
  | 'BREAK_GLASS_WRONG_SUBJECT'
  | 'BREAK_GLASS_WRONG_ENVIRONMENT'
  | 'BREAK_GLASS_EXPIRED'
  | 'BREAK_GLASS_EXPIRY_TOO_LONG'
  | 'BREAK_GLASS_UNTIMED'
  | 'BREAK_GLASS_APPROVALS_MISSING'
  | 'BREAK_GLASS_REPLAYED'
  /** no request with this id is stored in the ledger (POST /v1/break-glass stores them) */
  | 'BREAK_GLASS_UNKNOWN'
  /** the request was revoked (gate break-glass revoke, DELETE /v1/break-glass/ID) */
  | 'BREAK_GLASS_REVOKED'
  /** a request with this id is already stored */
  | 'BREAK_GLASS_EXISTS';

export interface BreakGlassRefusal {
  requestId?: string;
  source: string;
  code: BreakGlassRefusalCode | string;
  message: string;
}

/** A request that passed every check but single use (checked against the ledger when recording). */
export interface AcceptedBreakGlass {
  requestId: string;
  requester: string;
  justification: string;
  ticket: string;
  expiresAt: string;
  signers: string[];
  /** present when the request may be used again until it expires (reuse: until_expiry) */
  reuse?: 'until_expiry';
}
