import type { FastifyInstance } from 'fastify';
import type { Decision } from '../decision.js';
import type { CheckRequest } from '../gate.js';
import { parseDigest } from '../verify/statement.js';
import { statusForCode } from './errors.js';

/** Environment names as the policy data keys them; also used by the admission route's ?env=. */
export const ENVIRONMENT_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
} as const;

const DIGEST = { type: 'string', maxLength: 200 } as const;
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
      maxItems: 100,
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
  },
} as const;

type SubjectBody = string | { digest: string; name?: string; version?: string };
interface DecisionBody {
  subjects: SubjectBody[];
  environment: string;
  context?: Record<string, unknown>;
  dryRun?: boolean;
}

export function toCheckRequest(body: DecisionBody): CheckRequest {
  return {
    subjects: body.subjects.map((s) =>
      typeof s === 'string' ? { digest: parseDigest(s) } : { ...s, digest: parseDigest(s.digest) },
    ),
    environment: body.environment,
    context: body.context ?? {},
    dryRun: body.dryRun === true,
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

export function registerDecisionRoutes(
  app: FastifyInstance,
  check: (req: CheckRequest) => Promise<Decision>,
): void {
  app.post<{ Body: DecisionBody }>(
    '/v1/decisions',
    { schema: { body: BODY_SCHEMA } },
    async (request, reply) => {
      const decision = await check(toCheckRequest(request.body));
      return reply.code(statusOfDecision(decision)).send(decision);
    },
  );
}
