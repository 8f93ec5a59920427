import type { Deadline } from './collect/all.js';
import { GateError } from './errors.js';
import type { PolicySubject } from './evaluate/input.js';
import type { Subject } from './subject.js';
import { MAX_CONTEXT_DEPTH, valueDepthExceeds } from './util/input.js';

/** What a front end asks the gate: may these subjects go to this environment? */
export interface CheckRequest {
  subjects: Subject[];
  /**
   * container images, `REGISTRY/REPO[:TAG][@DIGEST]`: each is resolved to its digest once and
   * decided on as a subject (recorded with the reference); its repository is searched for evidence
   */
  images?: string[];
  environment: string;
  /** unsigned: information for policies, never a reason to relax a rule */
  context?: Record<string, unknown>;
  /** extra bundle files or folders for this request only */
  bundles?: string[];
  /** signed break-glass requests (bundles), with where each came from */
  breakGlass?: Array<{ source: string; bytes: Buffer }>;
  /** the id of a break-glass request stored in the ledger (POST /v1/break-glass) to use */
  breakGlassId?: string;
  dryRun?: boolean;
  /** the time budget of this decision in ms; the configured deadline when longer or absent */
  deadlineMs?: number;
  /** decide as of this time instead of now (recorded as such, as `asOf`) */
  at?: Date;
}

/**
 * The request as the gate decides on it: bounded (a context nested deeper than any real one
 * would overflow every recursive walk after it) and with each subject once, so a subject named
 * a hundred times is decided on, and recorded, once.
 */
export function admitRequest(req: CheckRequest): CheckRequest {
  if (valueDepthExceeds(req.context ?? {}, MAX_CONTEXT_DEPTH)) {
    throw new GateError('INPUT_TOO_DEEP', `context nests more than ${MAX_CONTEXT_DEPTH} levels`);
  }
  const seen = new Set<string>();
  const subjects = req.subjects.filter((s) => {
    const key = `${s.digest.algorithm}:${s.digest.hex.toLowerCase()}`;
    return !seen.has(key) && seen.add(key);
  });
  return subjects.length === req.subjects.length ? req : { ...req, subjects };
}

/**
 * The decision's one deadline: the configured one, or the caller's when shorter (admission
 * passes what is left of the webhook's timeout).
 */
export function deadlineOf(configured: number, asked: number | undefined): Deadline {
  const ms = Math.max(1, Math.min(configured, asked ?? Infinity));
  return { signal: AbortSignal.timeout(ms), ms };
}

/** A subject as the policy and the decision name it. */
export function policySubject(s: Subject): PolicySubject {
  return {
    digest: { [s.digest.algorithm]: s.digest.hex },
    ...(s.name ? { name: s.name } : {}),
    ...(s.version ? { version: s.version } : {}),
    ...(s.image ? { image: s.image } : {}),
  };
}

/**
 * The caller's context is not signed by anyone: the decision says which keys it held and that
 * none is verified.
 */
export function contextMark(context: Record<string, unknown> | undefined) {
  const keys = Object.keys(context ?? {});
  return keys.length ? { context: { verified: false as const, keys: keys.sort() } } : {};
}
