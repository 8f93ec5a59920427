import type { FastifyInstance } from 'fastify';
import type { Outcome } from '../decision.js';
import { GateError } from '../errors.js';
import { parseDigest } from '../verify/statement.js';
import { ENVIRONMENT_SCHEMA } from './decisions.js';
import { MAX_AUDIT_LIMIT, readDecisions } from './ledger-reader.js';

export const AUDIT_PREFIX = '/v1/audit';
const DEFAULT_LIMIT = 100;

interface AuditQuery {
  subject?: string;
  environment?: string;
  outcome?: Outcome;
  limit?: string;
}

// Query values arrive as strings and the server's validator does not coerce types (so a body
// never has "true" read as true), so the limit is a digit string parsed below.
const QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    subject: { type: 'string', maxLength: 200 },
    environment: ENVIRONMENT_SCHEMA,
    outcome: { enum: ['allow', 'deny', 'override', 'error'] },
    limit: { type: 'string', pattern: '^[0-9]{1,7}$' },
  },
} as const;

function limitOf(raw: string | undefined): number {
  const n = raw === undefined ? DEFAULT_LIMIT : Number(raw);
  if (n < 1 || n > MAX_AUDIT_LIMIT) {
    throw new GateError(
      'USAGE_ERROR',
      `limit must be between 1 and ${MAX_AUDIT_LIMIT}, got ${raw}`,
    );
  }
  return n;
}

/** GET /v1/audit/decisions: recorded decisions, newest first (bearer token: see auth.ts). */
export function registerAuditRoutes(app: FastifyInstance, ledgerPath: string): void {
  app.get<{ Querystring: AuditQuery }>(
    `${AUDIT_PREFIX}/decisions`,
    { schema: { querystring: QUERY_SCHEMA } },
    async (request) => {
      const q = request.query;
      const filter = {
        ...(q.subject !== undefined ? { subject: parseDigest(q.subject) } : {}),
        ...(q.environment !== undefined ? { environment: q.environment } : {}),
        ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
      };
      const { decisions, skipped } = await readDecisions(ledgerPath, filter, limitOf(q.limit));
      if (skipped > 0) request.log.warn({ skipped }, 'ledger lines that do not parse were skipped');
      return { decisions };
    },
  );
}
