import type { Decision } from '../decision.js';

/**
 * What a sink is told about one recorded decision: who, what, where and the verdict, with the
 * digests that find the full record in the ledger (`gate audit show ID`). The evidence lists are
 * left out: at ~1,500 decisions a second they would multiply the outbox's writes tenfold.
 */
export interface DecisionEvent {
  id: string;
  time: string;
  asOf?: string;
  gateVersion: string;
  environment: string;
  outcome: Decision['outcome'];
  allow: boolean;
  mode: Decision['mode'];
  /** "sha256:<hex>", with the subject's name when it has one */
  subjects: Array<{ digest: string; name?: string; image?: string }>;
  violations: Array<{ id: string; message: string }>;
  warnings: Array<{ id: string; message: string }>;
  rules: string[];
  error?: Decision['error'];
  override?: {
    requestId: string;
    requester: string;
    ticket: string;
    expiresAt: string;
    signers: string[];
    overridden: string[];
  };
  recheckOf?: Decision['recheckOf'];
  digests: Decision['digests'];
}

export function decisionEvent(d: Decision): DecisionEvent {
  const brief = (r: { id: string; message: string }) => ({ id: r.id, message: r.message });
  const o = d.override;
  return {
    id: d.id,
    time: d.time,
    ...(d.asOf ? { asOf: d.asOf } : {}),
    gateVersion: d.gateVersion,
    environment: d.environment,
    outcome: d.outcome,
    allow: d.allow,
    mode: d.mode,
    subjects: d.subjects.map((s) => ({
      digest: Object.entries(s.digest)
        .map(([alg, hex]) => `${alg}:${hex}`)
        .join(','),
      ...(s.name ? { name: s.name } : {}),
      ...(s.image ? { image: s.image.reference } : {}),
    })),
    violations: d.violations.map(brief),
    warnings: d.warnings.map(brief),
    rules: d.rules,
    ...(d.error ? { error: d.error } : {}),
    ...(o
      ? {
          override: {
            requestId: o.requestId,
            requester: o.requester,
            ticket: o.ticket,
            expiresAt: o.expiresAt,
            signers: o.signers,
            overridden: o.overridden,
          },
        }
      : {}),
    ...(d.recheckOf ? { recheckOf: d.recheckOf } : {}),
    digests: d.digests,
  };
}

/** One line a person reads first: the verdict, where, on what. */
export function eventSummary(e: DecisionEvent): string {
  const subjects = e.subjects.map((s) => (s.name ? `${s.name} ${s.digest}` : s.digest));
  const recheck = e.recheckOf ? ` (recheck of ${e.recheckOf.id}, was ${e.recheckOf.outcome})` : '';
  return `${e.outcome} in ${e.environment}: ${subjects.join(', ')}${recheck}`;
}
