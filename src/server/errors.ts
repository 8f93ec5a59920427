import type { FastifyError, FastifyInstance } from 'fastify';
import { isGateError, type GateErrorCode } from '../errors.js';

/** Codes the HTTP layer adds to the gate's own: authentication, routing, the unexpected. */
export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  /** a token-guarded route asked over plain http while the server listens beyond loopback */
  | 'TLS_REQUIRED'
  /** `dryRun: true` over http without `server.allowDryRun` in the configuration */
  | 'DRY_RUN_FORBIDDEN'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** more decisions at once and waiting than the server takes (server.load): 503, Retry-After */
  | 'SERVER_OVERLOADED'
  /** the client closed its connection before its decision started (499, never read) */
  | 'CLIENT_GONE'
  | 'INTERNAL_ERROR';

export type ErrorBody = {
  /** BREAK_GLASS_*: a refused break-glass request (src/breakglass/types.ts) */
  error: { code: GateErrorCode | HttpErrorCode | `BREAK_GLASS_${string}`; message: string };
};

/** An error whose HTTP status is decided where it is thrown (authentication, for one). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The caller's mistakes: fixing the request fixes them, retrying does not. */
const CLIENT_CODES = new Set<string>([
  'USAGE_ERROR',
  'CONFIG_INVALID',
  'POLICY_INPUT_INVALID',
  'INPUT_MALFORMED_JSON',
  'INPUT_TOO_DEEP',
]);

/**
 * A break-glass request refused (POST and DELETE /v1/break-glass): the request's fault, never the
 * server's. Who may not (403), no such request (404), its state forbids it (409); any other
 * refusal (invalid, expired, wrong environment or subject, untimed, too long) is 422.
 */
const BREAK_GLASS_STATUS: Record<string, number> = {
  BREAK_GLASS_UNAUTHORIZED: 403,
  BREAK_GLASS_APPROVALS_MISSING: 403,
  BREAK_GLASS_UNKNOWN: 404,
  BREAK_GLASS_EXISTS: 409,
  BREAK_GLASS_REVOKED: 409,
  BREAK_GLASS_REPLAYED: 409,
};

/**
 * The one table from a gate code to an HTTP status, for thrown errors and for decisions the gate
 * could not make alike. Every other code means a source, the policy or the ledger let the gate
 * down: 503, so clients retry and never read it as an allow.
 */
export function statusForCode(code: string): number {
  if (code === 'INPUT_TOO_LARGE') return 413;
  if (code.startsWith('BREAK_GLASS_')) return BREAK_GLASS_STATUS[code] ?? 422;
  return CLIENT_CODES.has(code) ? 400 : 503;
}

interface Mapped {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

const mapped = (
  status: number,
  code: ErrorBody['error']['code'],
  message: string,
  headers = {},
) => ({
  status,
  body: { error: { code, message: oneLine(message) } },
  headers,
});

/** Maps anything thrown by a route, a hook or fastify itself to a status and a coded body. */
export function toHttpError(err: unknown): Mapped {
  if (err instanceof HttpError) return mapped(err.status, err.code, err.message, err.headers);
  if (isGateError(err)) return mapped(statusForCode(err.code), err.code, err.message);
  // Unexpected: the message may hold internals, so it is logged, not sent.
  return fromFastify(err) ?? mapped(500, 'INTERNAL_ERROR', 'internal error');
}

/** fastify's own refusals: schema validation, body parsing and size, content type. */
function fromFastify(err: unknown): Mapped | undefined {
  const e = err as Partial<FastifyError> & { validation?: unknown };
  const message = lowerFirst(e.message ?? '');
  if (e.validation) return mapped(400, 'USAGE_ERROR', `request ${message}`);
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return mapped(413, 'INPUT_TOO_LARGE', 'request body is over the size limit');
  }
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return mapped(415, 'UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
  }
  // The JSON parser's syntax errors (and refused __proto__ keys) are SyntaxErrors without a code.
  const json = ['FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_JSON_BODY'];
  if (json.includes(e.code ?? '') || err instanceof SyntaxError) {
    return mapped(400, 'INPUT_MALFORMED_JSON', `request body is not valid json: ${message}`);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return mapped(e.statusCode, 'USAGE_ERROR', message || 'bad request');
  }
  return undefined;
}

/** Installs the mapping for the whole server: no route or hook formats an error itself. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const mapped = toHttpError(err);
    if (mapped.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: mapped.body.error.code }, mapped.body.error.message);
    return reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      error: {
        code: 'NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      },
    };
    return reply.code(404).send(body);
  });
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').slice(0, 1000);
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}
