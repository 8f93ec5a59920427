import type { CollectResult, Evidence, Source } from './collect/types.js';
import type { EvidenceReport } from './decision.js';
import { GateError, toGateError } from './errors.js';
import {
  toPolicyAttestation,
  type PolicyAttestation,
  type PolicyRejection,
} from './evaluate/input.js';
import type { GateConfig } from './config.js';
import { attestationOf } from './verify/attestation.js';
import { verifyEnvelope } from './verify/envelope.js';
import type { compileIdentityRules } from './verify/identity.js';
import type { Trust } from './verify/trust.js';
import type { VerifiedAttestation, VerifiedBundle } from './verify/types.js';
import type { ArtifactDigest } from './subject.js';
import { verifyBundle } from './verify/verifier.js';

/** The part of a check request the evidence stages need. */
export interface EvidenceRequest {
  subjects: Array<{ digest: ArtifactDigest }>;
}

/** The one deadline of a decision: every source stops looking when `signal` aborts. */
export interface Deadline {
  signal: AbortSignal;
  ms: number;
}

/**
 * After the deadline a source is given this long to answer with its own (coded) failure, as
 * every source of the gate does once its signal aborts; then it is cut off whatever it is doing.
 */
const GRACE_MS = 100;

/** Asks every source about every subject; the same evidence found twice counts once. */
export async function collectAll(
  sources: Source[],
  req: EvidenceRequest,
  deadline?: Deadline,
): Promise<CollectResult> {
  const out: CollectResult = { evidence: [], rejected: [], failures: [] };
  const seen = new Set<string>();
  for (const subject of req.subjects) {
    const results = await Promise.all(
      sources.map((s) => bounded(s, { subject: subject.digest }, deadline)),
    );
    for (const r of results) {
      for (const e of r.evidence) if (!seen.has(e.id) && seen.add(e.id)) out.evidence.push(e);
      out.rejected.push(...r.rejected);
      out.failures.push(...r.failures);
    }
  }
  return out;
}

/**
 * One source under the decision's deadline: retries and Retry-After waits included, it never
 * holds the decision past it. A source still looking then is a failure (could not decide).
 */
function bounded(
  source: Source,
  req: { subject: ArtifactDigest },
  deadline: Deadline | undefined,
): Promise<CollectResult> {
  if (!deadline) return source.collect(req);
  const { signal, ms } = deadline;
  const cutOff = (): CollectResult => ({
    evidence: [],
    rejected: [],
    failures: [
      {
        source: source.name,
        code: 'SOURCE_TIMEOUT',
        message: `${source.name} was still looking when the decision's deadline of ${ms} ms passed`,
      },
    ],
  });
  if (signal.aborted) return Promise.resolve(cutOff());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CollectResult>((resolve) => {
    signal.addEventListener(
      'abort',
      () => (timer = setTimeout(() => resolve(cutOff()), GRACE_MS)),
      {
        once: true,
      },
    );
  });
  const own = source.collect({ ...req, signal }).then((r) => deadlineNamed(r, signal, ms));
  return Promise.race([own, late]).finally(() => clearTimeout(timer));
}

/** A request cancelled by the deadline says so, rather than only "cancelled". */
function deadlineNamed(r: CollectResult, signal: AbortSignal, ms: number): CollectResult {
  if (!signal.aborted) return r;
  const failures = r.failures.map((f) => ({
    ...f,
    code: 'SOURCE_TIMEOUT' as const,
    message: `${f.message} (the decision's deadline of ${ms} ms passed)`,
  }));
  return { ...r, failures };
}

export interface VerifyContext {
  trust: Trust;
  identities: ReturnType<typeof compileIdentityRules> | 'any';
  keys: GateConfig['keys'];
}

/** Each piece of evidence is verified once, then matched against every subject of the request. */
export function verifyAll(evidence: Evidence[], req: EvidenceRequest, ctx: VerifyContext) {
  const attestations: PolicyAttestation[] = [];
  const rejected: PolicyRejection[] = [];
  const reports: EvidenceReport[] = [];
  for (const e of evidence) {
    let matched = 0;
    let lastError: GateError | undefined;
    let verified: VerifiedBundle | undefined;
    for (const subject of req.subjects) {
      try {
        const a: VerifiedAttestation =
          e.kind === 'dsse-envelope'
            ? verifyEnvelope(e.bytes, { keys: ctx.keys, subject: { digest: subject.digest } })
            : attestationOf(
                (verified ??= verifyBundle(e.bytes, {
                  trust: ctx.trust,
                  identities: ctx.identities,
                  keys: ctx.keys,
                })),
                { digest: subject.digest },
              );
        attestations.push(toPolicyAttestation(a, e.source));
        // One report per piece of evidence, however many subjects of the request it is about.
        if (matched === 0) reports.push(verifiedReport(e, a));
        matched++;
      } catch (err) {
        lastError = toGateError(err);
        if (lastError.code !== 'SUBJECT_MISMATCH') break;
      }
    }
    if (matched === 0 && lastError) {
      reports.push({
        id: e.id,
        source: e.source,
        status: 'rejected',
        code: lastError.code,
        message: lastError.message,
      });
      // Evidence about another artifact is not a failed check of this one: the policy is not told.
      if (lastError.code !== 'SUBJECT_MISMATCH') {
        rejected.push({
          id: e.id,
          source: e.source,
          code: lastError.code,
          message: lastError.message,
        });
      }
    }
  }
  return { attestations, rejected, reports };
}

export function verifiedReport(e: Evidence, a: VerifiedAttestation): EvidenceReport {
  return {
    id: e.id,
    source: e.source,
    status: 'verified',
    predicateType: a.predicateType,
    signer: a.signer,
    ...(a.logEntries[0] ? { logIndex: a.logEntries[0].logIndex } : {}),
  };
}

export function rejectedReport(r: CollectResult['rejected'][number]): EvidenceReport {
  return { id: r.id, source: r.source, status: 'rejected', code: r.code, message: r.message };
}
