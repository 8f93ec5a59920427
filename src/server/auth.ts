import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/** Routes whose URL starts with `prefix` need one of `tokens` as a bearer token. */
export interface GuardRule {
  prefix: string;
  tokens: readonly string[];
  /** what the token is for, named in the 401/403 message */
  scope: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Constant-time: both sides are hashed to equal length first (timingSafeEqual needs it, and a
 * length check would leak the token's length), and every allowed token is compared, so the time
 * says nothing about which one came close.
 */
export function tokenMatches(presented: string, allowed: readonly string[]): boolean {
  const p = digest(presented);
  let ok = false;
  for (const t of allowed) ok = timingSafeEqual(p, digest(t)) || ok;
  return ok;
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
  return m?.[1];
}

/** Throws 401 without a bearer token, 403 with one that is not allowed; an empty list allows no one. */
export function checkBearer(request: FastifyRequest, rule: GuardRule): void {
  const token = bearerOf(request);
  if (token === undefined) {
    throw new HttpError(401, 'UNAUTHORIZED', `${rule.scope} needs a bearer token`, {
      'www-authenticate': 'Bearer',
    });
  }
  if (!tokenMatches(token, rule.tokens)) {
    throw new HttpError(403, 'FORBIDDEN', `the bearer token is not allowed for ${rule.scope}`);
  }
}

/**
 * One hook for the whole server, keyed on the matched route's URL rather than on the plugin that
 * registered it: an audit route added anywhere later is guarded without anyone
 * remembering to. Unknown URLs stay 404 (the guard sees no route).
 */
export function installGuards(
  app: FastifyInstance,
  rules: GuardRule[],
  opts: { requireTls?: boolean } = {},
): void {
  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url;
    if (url === undefined) return;
    const rule = rules.find((r) => url === r.prefix || url.startsWith(`${r.prefix}/`));
    if (!rule) return;
    // Refused even with a valid token: it has crossed the network in clear, and accepting it
    // would teach clients that this is fine. The token's owner should rotate it.
    if (opts.requireTls) {
      throw new HttpError(
        403,
        'TLS_REQUIRED',
        `${rule.scope} needs https when the server listens beyond loopback: start it with --tls-cert and --tls-key`,
      );
    }
    checkBearer(request, rule);
  });
}
