import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { GateConfig } from '../config.js';
import type { CheckRequest, Gate } from '../gate.js';
import { registerAdmissionRoute, ADMISSION_BODY_LIMIT } from './admission.js';
import { AUDIT_PREFIX, registerAuditRoutes } from './audit.js';
import { installGuards, type GuardRule } from './auth.js';
import { BREAK_GLASS_PREFIX, registerBreakGlassRoutes } from './break-glass.js';
import { registerDecisionRoutes } from './decisions.js';
import { installErrorHandling } from './errors.js';
import { installBoundedJson } from './json-limits.js';
import { registerUiRoutes } from './ui/routes.js';
import {
  countedCheck,
  createMetrics,
  installCacheMetrics,
  installLoadMetrics,
  installSinkMetrics,
  installMetrics,
} from './metrics.js';
import { createLimiter, type LoadOptions } from './load.js';
import { installDraining } from './shutdown.js';

export interface ServerOptions {
  /** owned by the server from now on: closing the server closes the gate */
  gate: Gate;
  /**
   * the gate's configuration: /v1/audit reads the gate's own ledger, with the configured ledger's
   * key and cadence (verify) and policy store (replay); a JSON Lines ledger is read from its file
   */
  config?: GateConfig;
  /** allowed bearer tokens; the audit routes refuse everyone when the list is empty */
  tokens?: { audit?: string[]; decisions?: string[]; breakGlass?: string[] };
  /** largest request body in bytes (default 1 MiB; admission reviews get at least 4 MiB) */
  bodyLimit?: number;
  /** time allowed to receive a whole request (default 30 s): slow senders cannot hold sockets */
  requestTimeoutMs?: number;
  /** idle socket timeout (default 120 s) */
  connectionTimeoutMs?: number;
  logger?: FastifyServerOptions['logger'];
  /** false while the server should get no traffic (starting, draining); default always ready */
  ready?: () => boolean;
  /** the admission webhook's environment when its url names none */
  admissionEnvironment?: string;
  /** the admission webhook: kinds that may carry no pod spec, the longest a decision may take */
  admission?: { exemptKinds?: readonly string[]; deadlineMs?: number };
  /** decisions at once and waiting; past them requests are shed at once (load.ts) */
  load?: LoadOptions;
  /** honour `dryRun: true` on POST /v1/decisions (default: refused, 403 DRY_RUN_FORBIDDEN) */
  allowDryRun?: boolean;
  /** serve https with this certificate and key (PEM); tls.ts swaps them when the files change */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /**
   * The server listens beyond loopback. Without `tls`, token-guarded routes are then refused
   * (403 TLS_REQUIRED): a bearer token sent there has crossed the network in clear.
   */
  exposed?: boolean;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** The HTTP adapter over one gate: builds the routes, does not listen. */
export function createServer(opts: ServerOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // Typed as the default (http) instance: the routes do not care which one serves them.
  const app = Fastify({
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    logger: opts.logger ?? false,
    bodyLimit,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    connectionTimeout: opts.connectionTimeoutMs ?? 120_000,
    // Strict validation: no type coercion ("true" is not true, a string is not a one-item list)
    // and unknown properties are refused rather than silently dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  installErrorHandling(app);
  installBoundedJson(app);
  // JSON only: a text/plain body would reach the schema as a string and fail less clearly.
  app.removeContentTypeParser('text/plain');
  installGuards(app, guardRules(opts.tokens), { requireTls: opts.exposed === true && !opts.tls });
  const metrics = createMetrics();
  installMetrics(app, metrics);
  installCacheMetrics(metrics, opts.gate);
  installSinkMetrics(metrics, opts.gate);
  registerHealth(app, opts.ready ?? (() => true));
  const counted = countedCheck(opts.gate, metrics);
  const limiter = createLimiter(opts.load);
  installLoadMetrics(metrics, limiter);
  const check = (req: CheckRequest, left?: AbortSignal) => limiter.run(() => counted(req), left);
  registerDecisionRoutes(app, check, {
    allowDryRun: opts.allowDryRun === true,
    summarize: (d) => opts.gate.summarize(d),
  });
  registerAdmissionRoute(app, check, {
    ...opts.admission,
    ...(opts.admissionEnvironment ? { defaultEnvironment: opts.admissionEnvironment } : {}),
    bodyLimit: Math.max(bodyLimit, ADMISSION_BODY_LIMIT),
  });
  if (opts.config) registerAuditRoutes(app, opts.gate, opts.config.ledger);
  registerBreakGlassRoutes(app, opts.gate);
  // the auditor's web view: the same ledger and audit tokens, signed in once with a form
  if (opts.config)
    registerUiRoutes(app, {
      gate: opts.gate,
      config: opts.config.ledger,
      tokens: opts.tokens?.audit ?? [],
      secure: opts.tls !== undefined,
      refuseInClear: opts.exposed === true && !opts.tls,
    });
  installDraining(app);
  // Runs after fastify has stopped listening and the requests in flight have finished.
  app.addHook('onClose', async () => opts.gate.close());
  return app;
}

function guardRules(tokens: ServerOptions['tokens'] = {}): GuardRule[] {
  const rules: GuardRule[] = [
    { prefix: AUDIT_PREFIX, tokens: tokens.audit ?? [], scope: 'the audit log' },
    // no token configured: nobody may break glass through the server
    { prefix: BREAK_GLASS_PREFIX, tokens: tokens.breakGlass ?? [], scope: 'break glass' },
  ];
  // CI calls the decisions endpoint, so it is open unless tokens are configured for it.
  if (tokens.decisions?.length)
    rules.push({ prefix: '/v1/decisions', tokens: tokens.decisions, scope: 'decisions' });
  return rules;
}

function registerHealth(app: FastifyInstance, ready: () => boolean): void {
  // Liveness: the process answers. Readiness: it should get traffic (not draining, gate loaded).
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const ok = ready();
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready' });
  });
}
