import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GateConfig } from '../../config.js';
import type { Decision } from '../../decision.js';
import type { Gate } from '../../gate.js';
import { judge } from '../../recheck.js';
import { tokenMatches } from '../auth.js';
import { HttpError, toHttpError } from '../errors.js';
import { STYLESHEET } from './css.js';
import { html, type Html } from './html.js';
import { notice, page, STYLESHEET_PATH } from './layout.js';
import { createLedgerView } from './ledger-view.js';
import { breakGlassPage, requestsFrom } from './pages/break-glass.js';
import { decisionPage } from './pages/decision.js';
import { driftPage, isRecheckStatus, type RecheckView } from './pages/drift.js';
import { decisionsPage, parseFilters } from './pages/decisions.js';
import { ledgerPage } from './pages/ledger.js';
import { loginPage } from './pages/login.js';
import { replayPage } from './pages/replay.js';
import {
  applySecurityHeaders,
  clearedCookie,
  cookieName,
  readCookie,
  sameOrigin,
  sessionCookie,
} from './security.js';
import { createSessionStore, type SessionStore } from './session.js';

export const UI_PREFIX = '/ui';
/** a sign-in form holds one token: anything bigger is not one */
const FORM_BODY_LIMIT = 8 * 1024;
/** rechecks judged for the drift page, among the newest decisions read */
const RECHECKS_SHOWN = 200;
/** overrides, and break-glass records, read for the break-glass page */
const OVERRIDES_READ = 1000;
const PUBLIC = new Set([`${UI_PREFIX}/login`, STYLESHEET_PATH]);

export interface UiOptions {
  gate: Pick<Gate, 'ledger' | 'policy'>;
  config: GateConfig['ledger'];
  /** the audit tokens: any of them signs in; none signs nobody in */
  tokens: readonly string[];
  /** served over TLS: the cookie is Secure and __Host- prefixed, Origin is https */
  secure: boolean;
  /** listening beyond loopback without TLS: the token would cross the network in clear */
  refuseInClear: boolean;
  sessions?: SessionStore;
}

const ID_PARAMS = {
  params: {
    type: 'object',
    properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  },
} as const;

/**
 * The auditor's web view under /ui: read-only pages over the ledger /v1/audit reads, behind the
 * audit token given once in a form and then held as a session cookie (never in a URL).
 */
export function registerUiRoutes(app: FastifyInstance, opts: UiOptions): void {
  const sessions = opts.sessions ?? createSessionStore();
  const view = createLedgerView(opts.gate, opts.config);
  const cookie = cookieName(opts.secure);
  const sessionOf = (request: FastifyRequest) => readCookie(request, cookie);

  void app.register(
    async (ui) => {
      ui.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT },
        (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
      );
      ui.addHook('onSend', async (_request, reply) => applySecurityHeaders(reply));
      ui.addHook('onRequest', async (request, reply) => {
        if (opts.refuseInClear)
          throw new HttpError(
            403,
            'TLS_REQUIRED',
            'the web view needs https when the server listens beyond loopback: start it with --tls-cert and --tls-key',
          );
        if (request.method === 'POST' && !sameOrigin(request, opts.secure))
          throw new HttpError(
            403,
            'FORBIDDEN',
            'refused: this form was not sent from a page of this server',
          );
        const url = request.routeOptions.url;
        if (url === undefined || PUBLIC.has(url) || sessions.valid(sessionOf(request))) return;
        if (request.method === 'GET') return reply.redirect(`${UI_PREFIX}/login`, 303);
        throw new HttpError(401, 'UNAUTHORIZED', 'sign in first: the session has ended');
      });
      ui.setErrorHandler((err, request, reply) => {
        const m = toHttpError(err);
        if (m.status >= 500) request.log.error({ err }, 'web view request failed');
        const { code, message } = m.body.error;
        const signedIn = sessions.valid(sessionOf(request));
        return sendPage(
          reply.code(m.status).headers(m.headers),
          m.status === 401 && !signedIn
            ? loginPage({ error: message })
            : page(
                { title: 'Error', signedIn },
                notice('error', html`<code>${code}</code> ${message}`),
              ),
        );
      });
      ui.setNotFoundHandler((request, reply) =>
        sendPage(
          reply.code(404),
          page(
            { title: 'Not found', signedIn: sessions.valid(sessionOf(request)) },
            notice('error', 'There is no such page.'),
          ),
        ),
      );

      ui.get('/assets/gate.css', async (_request, reply) =>
        reply
          .header('content-type', 'text/css; charset=utf-8')
          .header('cache-control', 'no-cache')
          .send(STYLESHEET),
      );
      ui.get('/', async (_request, reply) => reply.redirect(`${UI_PREFIX}/decisions`, 303));
      ui.get('/login', async (request, reply) =>
        sessions.valid(sessionOf(request))
          ? reply.redirect(`${UI_PREFIX}/decisions`, 303)
          : sendPage(reply, loginPage()),
      );
      ui.post<{ Body: Record<string, string> | undefined }>('/login', async (request, reply) => {
        const token = request.body?.token;
        if (opts.tokens.length === 0)
          throw new HttpError(
            403,
            'FORBIDDEN',
            'this server has no audit token (GATE_TOKEN_AUDIT): nobody can sign in',
          );
        if (typeof token !== 'string' || token === '' || !tokenMatches(token, opts.tokens))
          throw new HttpError(
            401,
            'UNAUTHORIZED',
            'that token is not allowed to read the audit log',
          );
        sessions.drop(sessionOf(request));
        const s = sessions.create();
        reply.header(
          'set-cookie',
          sessionCookie(opts.secure, s.id, Math.ceil((s.expires - Date.now()) / 1000)),
        );
        return reply.redirect(`${UI_PREFIX}/decisions`, 303);
      });
      ui.post('/logout', async (request, reply) => {
        sessions.drop(sessionOf(request));
        return reply
          .header('set-cookie', clearedCookie(opts.secure))
          .redirect(`${UI_PREFIX}/login`, 303);
      });

      ui.get<{ Querystring: Record<string, unknown> }>('/decisions', async (request, reply) => {
        const { form, query, errors } = parseFilters(request.query);
        if (errors.length) return sendPage(reply.code(400), decisionsPage(form, { errors }));
        const listed = await view.list(query);
        return sendPage(reply, decisionsPage(form, { ...listed, limit: query.limit ?? 0 }));
      });
      ui.get<{ Params: { id: string } }>(
        '/decisions/:id',
        { schema: ID_PARAMS },
        async (request, reply) => {
          const r = await found(request.params.id);
          return sendPage(reply, decisionPage(r, await judged(r.decision)));
        },
      );
      ui.get<{ Querystring: { status?: unknown } }>('/drift', async (request, reply) => {
        const { decisions } = await view.list({ limit: OVERRIDES_READ });
        const rechecks: RecheckView[] = [];
        for (const d of decisions) {
          if (rechecks.length >= RECHECKS_SHOWN) break;
          const j = await judged(d);
          if (j) rechecks.push({ decision: d, ...j });
        }
        const status = isRecheckStatus(request.query.status) ? request.query.status : undefined;
        return sendPage(
          reply,
          driftPage(rechecks, { scanned: decisions.length, ...(status ? { status } : {}) }),
        );
      });
      ui.post<{ Params: { id: string } }>(
        '/decisions/:id/replay',
        { schema: ID_PARAMS },
        async (request, reply) =>
          sendPage(reply, replayPage(await view.replay(await found(request.params.id)))),
      );
      ui.get('/ledger', async (_request, reply) =>
        sendPage(reply, ledgerPage(await view.health())),
      );
      ui.get<{ Querystring: { request?: unknown } }>('/break-glass', async (request, reply) => {
        const { decisions } = await view.list({ outcome: 'override', limit: OVERRIDES_READ });
        const records = await view.breakGlass(OVERRIDES_READ);
        const only = typeof request.query.request === 'string' ? request.query.request : undefined;
        return sendPage(
          reply,
          breakGlassPage(requestsFrom(records, decisions), {
            now: Date.now(),
            limit: OVERRIDES_READ,
            ...(only !== undefined ? { only } : {}),
          }),
        );
      });
    },
    { prefix: UI_PREFIX },
  );

  /** a recheck judged as `gate recheck` judged it, against the decision it re-decided */
  const judged = async (d: Decision) => {
    const of = d.recheckOf;
    if (!of) return undefined;
    const was = await view.one(of.id).catch(() => undefined);
    const verdict: { status: RecheckView['status']; reasons: string[] } = was
      ? judge(was.decision, d)
      : {
          status:
            d.outcome === 'allow' ? 'unchanged' : d.outcome === 'error' ? 'undecided' : 'drift',
          reasons: [`the decision rechecked (${of.id}) is not in this ledger`],
        };
    return { of, ...verdict };
  };
  const found = async (id: string) => {
    const r = await view.one(id);
    if (!r) throw new HttpError(404, 'NOT_FOUND', `no decision ${id}`);
    return r;
  };
}

function sendPage(reply: FastifyReply, body: Html): FastifyReply {
  return reply.header('content-type', 'text/html; charset=utf-8').send(body.text);
}
