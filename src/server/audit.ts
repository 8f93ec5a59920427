import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  createJsonlLedger,
  MAX_JSONL_LIMIT,
  readDecisions,
  type AuditLedger,
  type LedgerQuery,
  policyStoreFor,
  recordedInput,
  type LedgerRecord,
  createReplayer,
  verifyDefaults,
} from '../index.js';
import type { GateConfig } from '../config.js';
import { GateError } from '../errors.js';
import type { Gate } from '../gate.js';
import { parseDigest } from '../subject.js';
import { ENVIRONMENT_SCHEMA } from './decisions.js';
import { HttpError } from './errors.js';

export const AUDIT_PREFIX = '/v1/audit';
const DEFAULT_LIMIT = 100;

// The server's validator does not coerce types (so a body never has "true" read as true): a
// limit of digits is made a number before validation (limitAsNumber), anything else is refused.
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
    limit: { type: 'integer', minimum: 1, maximum: MAX_JSONL_LIMIT },
  },
} as const;

const ID_PARAMS = {
  params: { type: 'object', properties: { id: { type: 'string', maxLength: 100 } } },
} as const;

async function limitAsNumber(request: FastifyRequest): Promise<void> {
  const q = request.query as Record<string, unknown>;
  if (typeof q.limit === 'string' && /^[0-9]{1,7}$/.test(q.limit)) q.limit = Number(q.limit);
}

/**
 * The audit routes (bearer token: see auth.ts): recorded decisions newest first, one decision
 * with its input, its replay, and a verification of the ledger. They read the ledger the gate
 * writes (`gate.ledger`), never a second one opened on the same file. A JSON Lines ledger is no
 * AuditLedger: its file is read for the list and verified as far as it can be; one decision and
 * replay need SQLite or PostgreSQL.
 */
export function registerAuditRoutes(
  app: FastifyInstance,
  gate: Pick<Gate, 'ledger' | 'policy'>,
  config: GateConfig['ledger'],
): void {
  const jsonl = config.backend === 'jsonl' ? config.path : undefined;
  const audit = (): AuditLedger => {
    if (jsonl)
      throw new GateError(
        'CONFIG_INVALID',
        'the jsonl ledger has no chain to query or verify: use sqlite or postgres',
      );
    if (!gate.ledger)
      throw new GateError('LEDGER_UNAVAILABLE', 'the gate records to no ledger that can be read');
    return gate.ledger;
  };
  const found = async (id: string): Promise<LedgerRecord> => {
    const r = await audit().get(id);
    if (!r) throw new HttpError(404, 'NOT_FOUND', `no decision ${id}`);
    return r;
  };

  app.get<{ Querystring: LedgerQuery }>(
    `${AUDIT_PREFIX}/decisions`,
    { schema: { querystring: QUERY_SCHEMA }, preValidation: limitAsNumber },
    async (request) => {
      const { subject, ...rest } = request.query;
      const d = subject === undefined ? undefined : parseDigest(subject);
      const q = { ...rest, ...(d ? { subject: `${d.algorithm}:${d.hex}` } : {}) };
      q.limit ??= DEFAULT_LIMIT;
      if (!jsonl) return { decisions: (await audit().query(q)).map((r) => r.decision) };
      const { decisions, skipped } = await readDecisions(jsonl, q);
      if (skipped > 0) request.log.warn({ skipped }, 'ledger lines that do not parse were skipped');
      return { decisions };
    },
  );

  app.get<{ Params: { id: string } }>(
    `${AUDIT_PREFIX}/decisions/:id`,
    { schema: ID_PARAMS },
    async (request) => {
      const r = await found(request.params.id);
      const { seq, hash, prevHash, decision } = r;
      return { seq, hash, prevHash, decision, input: recordedInput(r) };
    },
  );

  // then (the policy the decision was made with, from the store beside the ledger) and now (the
  // policy this gate decides with)
  const replay = createReplayer({ store: policyStoreFor(config), now: gate.policy });
  app.get<{ Params: { id: string } }>(
    `${AUDIT_PREFIX}/decisions/:id/replay`,
    { schema: ID_PARAMS },
    async (request) => {
      const r = await found(request.params.id);
      return replay({ decision: r.decision, input: recordedInput(r) });
    },
  );

  app.get(`${AUDIT_PREFIX}/verify`, async () => {
    const { publicKey, everyRecords } = verifyDefaults(config);
    const ledger = jsonl ? createJsonlLedger(jsonl) : audit();
    return ledger.verify(publicKey, everyRecords ? { everyRecords } : {});
  });
}
