import { createPublicKey, type KeyObject } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AuditLedger } from '../audit/ledger.js';
import { openAuditLedger } from '../audit/open.js';
import { recordedInput } from '../audit/record.js';
import { verifyLedger } from '../audit/verify-ledger.js';
import type { GateConfig } from '../config.js';
import type { Outcome } from '../decision.js';
import { GateError } from '../errors.js';
import { parseDigest } from '../subject.js';
import { ENVIRONMENT_SCHEMA } from './decisions.js';
import { MAX_AUDIT_LIMIT, readDecisions } from './ledger-reader.js';

export const AUDIT_PREFIX = '/v1/audit';
const DEFAULT_LIMIT = 100;

interface AuditQuery {
  subject?: string;
  environment?: string;
  outcome?: Outcome;
  from?: string;
  to?: string;
  requester?: string;
  rule?: string;
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
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    requester: { type: 'string', maxLength: 500 },
    rule: { type: 'string', maxLength: 200 },
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

/**
 * The audit routes (bearer token: see auth.ts): recorded decisions newest first, one decision
 * with its input, and a verification of the chain. Backed by the hash-chained ledger the gate
 * writes (SQLite or PostgreSQL); the plain JSON Lines ledger only answers the list.
 */
export function registerAuditRoutes(app: FastifyInstance, ledger: GateConfig['ledger']): void {
  let opened: Promise<AuditLedger> | undefined;
  const audit = () => (opened ??= openAuditLedger(ledger));
  app.addHook('onClose', async () => {
    if (opened) await (await opened).close();
  });

  app.get<{ Querystring: AuditQuery }>(
    `${AUDIT_PREFIX}/decisions`,
    { schema: { querystring: QUERY_SCHEMA } },
    async (request) => {
      const q = request.query;
      const limit = limitOf(q.limit);
      if (ledger.backend === 'jsonl') {
        const filter = {
          ...(q.subject !== undefined ? { subject: parseDigest(q.subject) } : {}),
          ...(q.environment !== undefined ? { environment: q.environment } : {}),
          ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
        };
        const { decisions, skipped } = await readDecisions(ledger.path, filter, limit);
        if (skipped > 0)
          request.log.warn({ skipped }, 'ledger lines that do not parse were skipped');
        return { decisions };
      }
      const subject = q.subject === undefined ? undefined : parseDigest(q.subject);
      const records = await (
        await audit()
      ).query({
        ...(subject ? { subject: `${subject.algorithm}:${subject.hex}` } : {}),
        ...(q.environment !== undefined ? { environment: q.environment } : {}),
        ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
        ...(q.from !== undefined ? { from: q.from } : {}),
        ...(q.to !== undefined ? { to: q.to } : {}),
        ...(q.requester !== undefined ? { requester: q.requester } : {}),
        ...(q.rule !== undefined ? { rule: q.rule } : {}),
        limit,
      });
      return { decisions: records.map((r) => r.decision) };
    },
  );

  app.get<{ Params: { id: string } }>(
    `${AUDIT_PREFIX}/decisions/:id`,
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 100 } } },
      },
    },
    async (request, reply) => {
      const r = await (await audit()).get(request.params.id);
      if (!r)
        return reply
          .code(404)
          .send({ error: { code: 'NOT_FOUND', message: `no decision ${request.params.id}` } });
      return {
        seq: r.seq,
        hash: r.hash,
        prevHash: r.prevHash,
        decision: r.decision,
        input: recordedInput(r),
      };
    },
  );

  app.get(`${AUDIT_PREFIX}/verify`, async () => {
    const key = publicKeyOf(ledger);
    const everyRecords = key ? (ledger.checkpointEvery?.records ?? 100) : undefined;
    return verifyLedger(await audit(), key, everyRecords ? { everyRecords } : {});
  });
}

function publicKeyOf(ledger: GateConfig['ledger']): KeyObject | undefined {
  const pem = ledger.publicKeyPem ?? ledger.checkpointKeyPem;
  return pem ? createPublicKey(pem) : undefined;
}
