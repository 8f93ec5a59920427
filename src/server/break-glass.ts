import type { FastifyInstance, FastifyReply } from 'fastify';
import { GateError } from '../errors.js';
import type { Gate } from '../gate.js';
import { statusForCode, type ErrorBody } from './errors.js';

/**
 * POST /v1/break-glass and DELETE /v1/break-glass/ID, behind the break-glass token
 * (GATE_TOKEN_BREAK_GLASS; auth.ts guards every route under the prefix).
 *
 * POST takes `{"bundles": [<the request's Sigstore bundle>, <each co-signature's bundle>]}`,
 * checks them against the policy data exactly as `gate check --break-glass` does, and records the
 * accepted request in the ledger before answering 201 `{"requestId": ...}`. A refused request is
 * recorded too, and answered with its code (src/breakglass/types.ts) and the status the one table
 * gives it (errors.ts). GET says what the ledger holds of a request. DELETE revokes a request, recorded; it authorizes nothing after, whether it
 * was stored here or is only ever presented as bundles.
 */
export const BREAK_GLASS_PREFIX = '/v1/break-glass';

/** A bundle is a few kilobytes; one request with its co-signatures fits well in 1 MiB. */
export const BREAK_GLASS_BODY_LIMIT = 1024 * 1024;

/** The request's own bundle and its co-signatures (as src/breakglass/stored.ts takes them). */
const MAX_BUNDLES = 16;

type Registered = Awaited<ReturnType<NonNullable<Gate['breakGlass']>['register']>>;
type BreakGlassRefusal = Extract<Registered, { ok: false }>['refusal'];

/** As the break-glass predicate's schema allows a request id. */
const REQUEST_ID = { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' } as const;

const POST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['bundles'],
  properties: {
    bundles: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_BUNDLES,
      items: { type: 'object' },
    },
  },
} as const;

const DELETE_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: REQUEST_ID },
} as const;

const DELETE_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
} as const;

export function registerBreakGlassRoutes(app: FastifyInstance, gate: Gate): void {
  const service = () => {
    if (!gate.breakGlass)
      throw new GateError('LEDGER_UNAVAILABLE', 'this gate stores no break-glass requests');
    return gate.breakGlass;
  };

  app.post<{ Body: { bundles: unknown[] } }>(
    BREAK_GLASS_PREFIX,
    { schema: { body: POST_SCHEMA }, bodyLimit: BREAK_GLASS_BODY_LIMIT },
    async (request, reply) => {
      const result = await service().register(request.body.bundles);
      if (!result.ok) return refused(reply, result.refusal, result.recordId);
      request.log.warn(
        { requestId: result.requestId, record: result.recordId },
        'break-glass request stored',
      );
      return reply.code(201).send({
        requestId: result.requestId,
        environment: result.request.environment,
        subjects: result.request.subjects,
        expiresAt: result.expiresAt,
        record: result.recordId,
      });
    },
  );

  // GET /v1/break-glass/ID: the request as stored, and whether it still authorizes anything
  app.get<{ Params: { id: string } }>(
    `${BREAK_GLASS_PREFIX}/:id`,
    { schema: { params: DELETE_PARAMS } },
    async (request, reply) => {
      const { id } = request.params;
      const stored = await service().lookup(id);
      if (!stored)
        return refused(reply, {
          requestId: id,
          source: 'ledger',
          code: 'BREAK_GLASS_UNKNOWN',
          message: `no break-glass request ${id} is stored or revoked in the ledger`,
        });
      const accepted = stored.accepted;
      const revoked = stored.revoked;
      const held = accepted?.breakGlass.request;
      return reply.send({
        requestId: id,
        stored: accepted !== undefined,
        ...(held && accepted
          ? {
              environment: held.environment,
              subjects: held.subjects,
              requester: held.requester,
              signers: held.signers,
              justification: held.justification,
              ticket: held.ticket,
              expiresAt: held.expiresAt,
              reuse: held.reuse ?? 'single',
              storedAt: accepted.time,
              record: accepted.id,
            }
          : {}),
        ...(revoked
          ? {
              revoked: {
                at: revoked.time,
                record: revoked.id,
                ...(revoked.breakGlass.via ? { via: revoked.breakGlass.via } : {}),
                ...(revoked.breakGlass.reason ? { reason: revoked.breakGlass.reason } : {}),
              },
            }
          : {}),
        // what the ledger says now; each use still checks the bundles, subjects and environment
        active: !revoked && held !== undefined && Date.parse(held.expiresAt) > Date.now(),
      });
    },
  );

  // DELETE /v1/break-glass/ID[?reason=TEXT]: no body
  app.delete<{ Params: { id: string }; Querystring: { reason?: string } }>(
    `${BREAK_GLASS_PREFIX}/:id`,
    { schema: { params: DELETE_PARAMS, querystring: DELETE_QUERY } },
    async (request, reply) => {
      const { id } = request.params;
      const result = await service().revoke(id, 'server', request.query.reason);
      if (!result.ok) return refused(reply, result.refusal);
      request.log.warn({ requestId: id, record: result.recordId }, 'break-glass request revoked');
      // stored: false for a request never posted here (used only as bundles): revoked all the same
      return reply.send({
        requestId: id,
        revoked: true,
        stored: result.stored,
        record: result.recordId,
      });
    },
  );
}

function refused(reply: FastifyReply, r: BreakGlassRefusal, record?: string) {
  const body: ErrorBody & { record?: string } = {
    error: { code: r.code as ErrorBody['error']['code'], message: oneLine(r.message) },
    ...(record ? { record } : {}),
  };
  return reply.code(statusForCode(r.code)).send(body);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').slice(0, 1000);
}
