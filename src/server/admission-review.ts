import { isPlainObject } from '../util/input.js';

/**
 * The AdmissionReview envelope, read by hand rather than by a schema: a schema failure is an
 * HTTP 400, which `failurePolicy: Ignore` turns into an allow. Whatever the server could parse is
 * answered with an AdmissionReview that denies with the reason (admission.ts).
 */

export const REVIEW_V1 = 'admission.k8s.io/v1';
export const REVIEW_V1BETA1 = 'admission.k8s.io/v1beta1';

/** The parts of an admission.k8s.io/v1 AdmissionRequest the webhook reads. */
export interface AdmissionRequest {
  uid: string;
  kind: { kind: string };
  operation: string;
  subResource?: string;
  namespace?: string;
  name?: string;
  object?: unknown;
}

export interface AdmissionResult {
  allowed: boolean;
  status?: { code: number; message: string };
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export type ParsedReview =
  | { ok: true; apiVersion: string; request: AdmissionRequest }
  /** answered as a denial: apiVersion and uid are echoed where the body had them */
  | { ok: false; apiVersion: string; uid: string; message: string };

const UNSUPPORTED_V1BETA1 = `${REVIEW_V1BETA1} reviews are not supported: set admissionReviewVersions: ["v1"] in the webhook configuration`;

export function parseReview(body: unknown): ParsedReview {
  const uid = uidOf(body);
  const malformed = (why: string): ParsedReview => ({
    ok: false,
    apiVersion: REVIEW_V1,
    uid,
    message: `malformed admission review: ${why}`,
  });
  if (!isPlainObject(body)) return malformed('the body is not a json object');
  if (body.apiVersion === REVIEW_V1BETA1) {
    return { ok: false, apiVersion: REVIEW_V1BETA1, uid, message: UNSUPPORTED_V1BETA1 };
  }
  if (body.apiVersion !== REVIEW_V1) {
    return malformed(`apiVersion must be ${REVIEW_V1}, got ${shown(body.apiVersion)}`);
  }
  if (body.kind !== 'AdmissionReview') {
    return malformed(`kind must be AdmissionReview, got ${shown(body.kind)}`);
  }
  const r = body.request;
  if (!isPlainObject(r)) return malformed('it has no request');
  if (uid === '') return malformed('request.uid must be a string of 1 to 128 characters');
  const kind = isPlainObject(r.kind) ? r.kind.kind : undefined;
  if (typeof kind !== 'string') return malformed('request.kind.kind must be a string');
  if (typeof r.operation !== 'string') return malformed('request.operation must be a string');
  for (const field of ['subResource', 'namespace', 'name'] as const) {
    if (r[field] !== undefined && typeof r[field] !== 'string') {
      return malformed(`request.${field} must be a string`);
    }
  }
  const request: AdmissionRequest = {
    uid,
    kind: { kind },
    operation: r.operation,
    object: r.object,
    ...pick(r, 'subResource'),
    ...pick(r, 'namespace'),
    ...pick(r, 'name'),
  };
  return { ok: true, apiVersion: REVIEW_V1, request };
}

/** The uid to echo: the API server matches the response to its request by it. */
function uidOf(body: unknown): string {
  const r = isPlainObject(body) ? body.request : undefined;
  const uid = isPlainObject(r) ? r.uid : undefined;
  return typeof uid === 'string' && uid.length >= 1 && uid.length <= 128 ? uid : '';
}

function pick(r: Record<string, unknown>, field: 'subResource' | 'namespace' | 'name') {
  return typeof r[field] === 'string' ? { [field]: r[field] as string } : {};
}

function shown(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 80);
}

/** What the API server waits when the webhook configuration names no timeoutSeconds. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

/**
 * The API server appends `?timeout=10s` (a Go duration) to every webhook call and gives up after
 * it, following the failure policy. The decision must be answered before that, with room for the
 * sources to give up, the ledger write and the response: 20% of the timeout, at least 500 ms,
 * is kept back; the configuration may ask for less time still. A timeout that cannot be read
 * counts as the API server's default.
 */
export function admissionDeadlineMs(timeout: unknown, configuredMs?: number): number {
  const webhookMs =
    (typeof timeout === 'string' ? goDurationMs(timeout) : undefined) ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const budget = Math.max(MIN_DEADLINE_MS, webhookMs - Math.max(webhookMs * 0.2, 500));
  return Math.floor(configuredMs === undefined ? budget : Math.min(configuredMs, budget));
}

/** Even a tiny timeout leaves the gate this long to try (and then deny). */
const MIN_DEADLINE_MS = 100;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** "10s", "1m30s", "500ms" as Go's time.Duration.String() writes them; undefined otherwise. */
export function goDurationMs(s: string): number | undefined {
  if (
    s.length === 0 ||
    s.length > 32 ||
    !/^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$/.test(s)
  ) {
    return undefined;
  }
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(n) * UNIT_MS[unit!]!;
  }
  return ms > 0 ? ms : undefined;
}
