import { VerifyError, toGateError } from '../errors.js';
import { schemaChecker } from '../util/schemas.js';
import { attestationOf } from '../verify/attestation.js';
import { matchSubject } from '../verify/statement.js';
import type { Trust } from '../verify/trust.js';
import type { Signer, TrustedKey, VerifiedAttestation } from '../verify/types.js';
import type { ArtifactDigest } from '../subject.js';
import { normaliseKeyId } from '../verify/key-id.js';
import { verifyBundle } from '../verify/verifier.js';
import {
  BREAK_GLASS_PREDICATE_TYPE,
  type AcceptedBreakGlass,
  type BreakGlassPredicate,
  type BreakGlassRefusal,
  type BreakGlassRule,
  type DataIdentity,
} from './types.js';

export interface BreakGlassContext {
  trust: Trust;
  keys: TrustedKey[];
  subjects: ArtifactDigest[];
  environment: string;
  now: Date;
  /** data.gate.config.break_glass.environments */
  rules: Record<string, BreakGlassRule> | undefined;
}

interface Signed {
  source: string;
  predicate: BreakGlassPredicate;
  payload: string;
  signer: string;
  signedAt: number;
  raw: Signer;
}

const checkPredicate = schemaChecker(
  'break-glass-predicate.schema.json',
  'STATEMENT_INVALID',
  'break-glass predicate',
);

/**
 * Checks break-glass requests: each signature verified like any evidence, then the request's
 * subject, environment, expiry, requester and co-signers against policy data. Single use is
 * checked by the caller against the ledger, under the same lock that records the decision.
 */
export function checkBreakGlass(
  items: Array<{ source: string; bytes: Buffer }>,
  ctx: BreakGlassContext,
) {
  const refused: BreakGlassRefusal[] = [];
  const signed: Signed[] = [];
  for (const item of items) {
    try {
      signed.push(readRequest(item, ctx));
    } catch (err) {
      const e = toGateError(err);
      const code =
        e.code === 'SUBJECT_MISMATCH' ? 'BREAK_GLASS_WRONG_SUBJECT' : 'BREAK_GLASS_INVALID';
      refused.push({ source: item.source, code, message: `${e.code}: ${e.message}` });
    }
  }
  let accepted: AcceptedBreakGlass | undefined;
  for (const group of groupByRequest(signed, refused)) {
    const refusal = judge(group, ctx);
    if (refusal) refused.push(refusal);
    else accepted ??= acceptedOf(group, ctx.rules?.[ctx.environment]);
  }
  return { accepted, refused };
}

function readRequest(item: { source: string; bytes: Buffer }, ctx: BreakGlassContext): Signed {
  const verified = verifyBundle(item.bytes, {
    trust: ctx.trust,
    identities: 'any',
    keys: ctx.keys,
  });
  const [first, ...rest] = ctx.subjects;
  if (!first) throw new VerifyError('SUBJECT_MISMATCH', 'a break-glass request needs a subject');
  // The request must name every artifact of the decision, not just one of a release set.
  const a: VerifiedAttestation = attestationOf(verified, { digest: first });
  for (const s of rest) matchSubject(a.statement, s);
  if (a.predicateType !== BREAK_GLASS_PREDICATE_TYPE) {
    throw new VerifyError(
      'STATEMENT_INVALID',
      `predicate type is ${a.predicateType}, not ${BREAK_GLASS_PREDICATE_TYPE}`,
    );
  }
  checkPredicate(a.predicate);
  const times = a.timestamps.map((t) => Date.parse(t.time));
  return {
    source: item.source,
    predicate: a.predicate as BreakGlassPredicate,
    payload: verified.payload!.toString('base64'),
    signer: signerName(a.signer),
    signedAt: times.length ? Math.min(...times) : NaN,
    raw: a.signer,
  };
}

function groupByRequest(signed: Signed[], refused: BreakGlassRefusal[]): Signed[][] {
  const groups = new Map<string, Signed[]>();
  for (const s of signed) {
    const group = groups.get(s.predicate.requestId) ?? [];
    if (group.length > 0 && group[0]!.payload !== s.payload) {
      refused.push({
        requestId: s.predicate.requestId,
        source: s.source,
        code: 'BREAK_GLASS_INVALID',
        message: 'co-signature is over a different statement than the request',
      });
      continue;
    }
    groups.set(s.predicate.requestId, [...group, s]);
  }
  return [...groups.values()];
}

function judge(group: Signed[], ctx: BreakGlassContext): BreakGlassRefusal | undefined {
  const p = group[0]!.predicate;
  const refuse = (code: BreakGlassRefusal['code'], message: string) => ({
    requestId: p.requestId,
    source: group[0]!.source,
    code,
    message,
  });
  if (p.environment !== ctx.environment)
    return refuse(
      'BREAK_GLASS_WRONG_ENVIRONMENT',
      `request is for ${p.environment}, not ${ctx.environment}`,
    );
  const rule = ctx.rules?.[ctx.environment];
  if (!rule)
    return refuse(
      'BREAK_GLASS_NOT_CONFIGURED',
      `break-glass is not configured for ${ctx.environment}`,
    );
  if (rule.reuse !== undefined && rule.reuse !== 'single' && rule.reuse !== 'until_expiry')
    return refuse(
      'BREAK_GLASS_NOT_CONFIGURED',
      `break_glass.environments.${ctx.environment}.reuse must be until_expiry or single, found ${JSON.stringify(rule.reuse)}`,
    );
  const expires = Date.parse(p.expiresAt);
  if (!(expires > ctx.now.getTime()))
    return refuse('BREAK_GLASS_EXPIRED', `request expired at ${p.expiresAt}`);
  const signedAt = Math.min(...group.map((s) => s.signedAt));
  if (Number.isNaN(signedAt))
    return refuse(
      'BREAK_GLASS_UNTIMED',
      'request has no verified signing time (no log entry or timestamp)',
    );
  if (expires - signedAt > rule.max_expiry_minutes * 60_000) {
    return refuse(
      'BREAK_GLASS_EXPIRY_TOO_LONG',
      `request expires ${Math.round((expires - signedAt) / 60_000)} minutes after signing; ${ctx.environment} allows ${rule.max_expiry_minutes}`,
    );
  }
  const requesterId = normaliseKeyId(p.requester);
  const requester = group.find(
    (s) => s.signer === requesterId && rule.requesters.some((id) => matches(id, s.raw)),
  );
  if (!requester)
    return refuse(
      'BREAK_GLASS_UNAUTHORIZED',
      `${p.requester} is not a signer allowed to break glass for ${ctx.environment}`,
    );
  const approvers = new Set(
    group
      .filter(
        (s) => s.signer !== requesterId && (rule.approvers ?? []).some((id) => matches(id, s.raw)),
      )
      .map((s) => s.signer),
  );
  const needed = rule.approvals ?? 0;
  if (approvers.size < needed)
    return refuse(
      'BREAK_GLASS_APPROVALS_MISSING',
      `${approvers.size} of ${needed} distinct approvers co-signed`,
    );
  return undefined;
}

function acceptedOf(group: Signed[], rule: BreakGlassRule | undefined): AcceptedBreakGlass {
  const p = group[0]!.predicate;
  const signers = [...new Set(group.map((s) => s.signer))];
  return {
    requestId: p.requestId,
    requester: p.requester,
    justification: p.justification,
    ticket: p.ticket,
    expiresAt: p.expiresAt,
    signers,
    // single use is the ledger's default for an override; reuse is said explicitly
    ...(rule?.reuse === 'single' ? {} : { reuse: 'until_expiry' as const }),
  };
}

/** keyless signers are named by their SAN, key signers by their key id. */
function signerName(s: Signer): string {
  return s.kind === 'keyless' ? (s.identity ?? '') : (s.keyId ?? '');
}

function matches(id: DataIdentity, s: Signer): boolean {
  if (id.key_id !== undefined) return s.kind === 'key' && s.keyId === normaliseKeyId(id.key_id);
  if (s.kind !== 'keyless' || s.issuer !== id.issuer || s.identity === undefined) return false;
  if (id.san !== undefined) return s.identity === id.san;
  return id.san_regexp !== undefined && new RegExp(`^(?:${id.san_regexp})$`, 'u').test(s.identity);
}
