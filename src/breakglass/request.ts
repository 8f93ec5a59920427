import { randomUUID } from 'node:crypto';
import { GateError } from '../errors.js';
import { BREAK_GLASS_PREDICATE_TYPE, type BreakGlassPredicate } from './types.js';
import type { ArtifactDigest } from '../subject.js';

export interface BreakGlassRequestOptions {
  subjects: Array<{ digest: ArtifactDigest; name?: string }>;
  environment: string;
  justification: string;
  ticket: string;
  requester: string;
  /** minutes from now */
  expiresInMinutes: number;
  now: Date;
  requestId?: string;
}

/**
 * The unsigned break-glass statement. The requester signs it (keyless or with a key) with cosign
 * or any Sigstore client; co-signers sign the same statement. Nothing here is trusted until the
 * signatures verify.
 */
export function breakGlassStatement(o: BreakGlassRequestOptions) {
  if (!(o.expiresInMinutes > 0))
    throw new GateError('USAGE_ERROR', 'expiry must be a positive number of minutes');
  if (o.justification.trim().length < 10)
    throw new GateError('USAGE_ERROR', 'justification must say why, in at least 10 characters');
  const predicate: BreakGlassPredicate = {
    requestId: o.requestId ?? randomUUID(),
    environment: o.environment,
    justification: o.justification,
    ticket: o.ticket,
    requester: o.requester,
    requestedAt: o.now.toISOString(),
    expiresAt: new Date(o.now.getTime() + o.expiresInMinutes * 60_000).toISOString(),
  };
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: o.subjects.map((s) => ({
      name: s.name ?? `${s.digest.algorithm}:${s.digest.hex}`,
      digest: { [s.digest.algorithm]: s.digest.hex },
    })),
    predicateType: BREAK_GLASS_PREDICATE_TYPE,
    predicate,
  };
}
