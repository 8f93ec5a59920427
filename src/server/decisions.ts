import type { FastifyInstance } from 'fastify';
import type { Decision } from '../decision.js';
import type { CheckRequest } from '../gate.js';
import { GateError, toGateError } from '../errors.js';
import { parseDigest } from '../subject.js';
import { HttpError, statusForCode } from './errors.js';
import { clientGone } from './load.js';

/** Environment names as the policy data keys them; also used by the admission route's ?env=. */
export const ENVIRONMENT_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
} as const;

const DIGEST = { type: 'string', maxLength: 200 } as const;

/** A release set larger than this is a mistake or an attack: each subject is its own lookups. */
export const MAX_SUBJECTS = 64;
/** `context` is information for the policy, not a payload: 64 KiB of JSON is plenty. */
export const MAX_CONTEXT_BYTES = 64 * 1024;
const LABEL = { type: 'string', minLength: 1, maxLength: 256 } as const;

/**
 * The request body. Shape only: digests are checked by parseDigest, the same parser as the CLI.
 * No `bundles`: those are paths on the server's disk, not something a client may point at.
 */
const BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['subjects', 'environment'],
  properties: {
    subjects: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_SUBJECTS,
      items: {
        oneOf: [
          DIGEST,
          {
            type: 'object',
            additionalProperties: false,
            required: ['digest'],
            properties: { digest: DIGEST, name: LABEL, version: LABEL },
          },
        ],
      },
    },
    environment: ENVIRONMENT_SCHEMA,
    context: { type: 'object' },
    dryRun: { type: 'boolean' },
    summary: { type: 'boolean' },
    /** the id of a break-glass request stored through POST /v1/break-glass, to override by */
    breakGlass: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' },
  },
} as const;

type SubjectBody = string | { digest: string; name?: string; version?: string };
interface DecisionBody {
  subjects: SubjectBody[];
  environment: string;
  context?: Record<string, unknown>;
  dryRun?: boolean;
  /** also return a signed verification summary when the decision is an enforced allow */
  summary?: boolean;
  breakGlass?: string;
}

export function toCheckRequest(body: DecisionBody): CheckRequest {
  return {
    subjects: body.subjects.map((s) =>
      typeof s === 'string' ? { digest: parseDigest(s) } : { ...s, digest: parseDigest(s.digest) },
    ),
    environment: body.environment,
    context: body.context ?? {},
    dryRun: body.dryRun === true,
    ...(body.breakGlass ? { breakGlassId: body.breakGlass } : {}),
  };
}

/**
 * A deny is an answer, not a failure: 200 like an allow. A decision the gate could not make is
 * 503 (400 when the request itself was at fault), with the recorded decision as the body; its
 * `error` field has the same {code, message} shape as every other error response.
 */
export function statusOfDecision(decision: Decision): number {
  if (decision.outcome !== 'error') return 200;
  return statusForCode(decision.error?.code ?? 'POLICY_EVAL_FAILED');
}

/**
 * Refused before deciding: a dry-run the configuration does not allow over http (a caller must
 * not turn enforcement off for itself), and a context over the size limit.
 */
function checkBody(body: DecisionBody, allowDryRun: boolean): void {
  if (body.dryRun === true && !allowDryRun) {
    throw new HttpError(
      403,
      'DRY_RUN_FORBIDDEN',
      'dryRun is not allowed over http: the configuration must set server.allowDryRun: true',
    );
  }
  const size = body.context === undefined ? 0 : Buffer.byteLength(JSON.stringify(body.context));
  if (size > MAX_CONTEXT_BYTES) {
    throw new GateError(
      'INPUT_TOO_LARGE',
      `context is ${size} bytes of json, over the limit of ${MAX_CONTEXT_BYTES}`,
    );
  }
}

export function registerDecisionRoutes(
  app: FastifyInstance,
  check: (req: CheckRequest, left?: AbortSignal) => Promise<Decision>,
  opts: { allowDryRun?: boolean; summarize?: (d: Decision) => unknown } = {},
): void {
  app.post<{ Body: DecisionBody }>(
    '/v1/decisions',
    { schema: { body: BODY_SCHEMA } },
    async (request, reply) => {
      checkBody(request.body, opts.allowDryRun === true);
      const decision = await check(toCheckRequest(request.body), clientGone(request, reply));
      const extra = request.body.summary ? summaryOf(decision, opts.summarize) : {};
      return reply.code(statusOfDecision(decision)).send({ ...decision, ...extra });
    },
  );
}

/**
 * The signed summary asked for with `"summary": true`: only an enforced allow has one. The
 * decision stands (it is recorded) even when no summary can be signed; `summaryError` says why.
 */
function summaryOf(d: Decision, summarize: ((d: Decision) => unknown) | undefined) {
  if (d.outcome !== 'allow' || d.mode !== 'enforce') return {};
  try {
    if (!summarize) throw new GateError('CONFIG_INVALID', 'this server signs no summaries');
    return { summary: summarize(d) };
  } catch (err) {
    const e = toGateError(err);
    return { summaryError: { code: e.code, message: e.message } };
  }
}
