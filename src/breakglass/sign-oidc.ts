import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GateError, type GateErrorCode } from '../errors.js';

/** The public-good instance's OIDC issuer and client (what cosign and sigstore-js use). */
export const DEFAULT_OIDC_ISSUER = 'https://oauth2.sigstore.dev/auth';
export const DEFAULT_OIDC_CLIENT_ID = 'sigstore';
const AUDIENCE = 'sigstore';

export type TokenEnvironment = Record<string, string | undefined>;

/**
 * An identity token from the environment, as in CI: SIGSTORE_ID_TOKEN (cosign's variable), or
 * GitHub Actions' token service (a job with `permissions: id-token: write` has
 * ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN). Undefined when there is none.
 */
export async function tokenFromEnvironment(
  env: TokenEnvironment,
  timeoutMs = 10_000,
): Promise<string | undefined> {
  const direct = env.SIGSTORE_ID_TOKEN?.trim();
  if (direct) return direct;
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !bearer) return undefined;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new GateError('SIGN_NO_IDENTITY_TOKEN', 'ACTIONS_ID_TOKEN_REQUEST_URL is not a url');
  }
  target.searchParams.set('audience', AUDIENCE);
  const body = await getJSON(
    target,
    { accept: 'application/json', authorization: `Bearer ${bearer}` },
    timeoutMs,
    'the github actions token service',
    'SIGN_NO_IDENTITY_TOKEN',
  );
  const value = (body as { value?: unknown }).value;
  if (typeof value !== 'string' || value === '')
    throw new GateError(
      'SIGN_NO_IDENTITY_TOKEN',
      'the github actions token service answered without a token (value)',
    );
  return value;
}

export interface BrowserFlowOptions {
  issuer: string;
  clientId: string;
  /** opens the sign-in address; the address is always printed too */
  open: (url: string) => void;
  /** where to say what to do */
  tell: (line: string) => void;
  /** how long to wait for the sign-in (default 5 minutes) */
  timeoutMs?: number;
}

/**
 * The interactive sign-in cosign and the old sigstore-js used: OAuth 2.0 authorization code with
 * PKCE (RFC 7636) and a loopback redirect (RFC 8252, section 7.3), against the issuer's discovery
 * document. The callback listens on 127.0.0.1 only; `state` and `nonce` tie the answer to this
 * request. The ID token is not checked here: Fulcio checks it.
 */
export async function tokenFromBrowser(o: BrowserFlowOptions): Promise<string> {
  const timeoutMs = o.timeoutMs ?? 5 * 60_000;
  const issuer = o.issuer.replace(/\/+$/, '');
  const discovery = (await getJSON(
    new URL(`${issuer}/.well-known/openid-configuration`),
    { accept: 'application/json' },
    10_000,
    `the oidc issuer ${issuer}`,
    'SIGN_OIDC_FLOW_FAILED',
  )) as { authorization_endpoint?: unknown; token_endpoint?: unknown };
  const authorize = urlOf(discovery.authorization_endpoint, 'authorization_endpoint');
  const tokenEndpoint = urlOf(discovery.token_endpoint, 'token_endpoint');

  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const callback = await listenForCallback(state, timeoutMs);
  try {
    const redirectUri = `http://localhost:${callback.port}/auth/callback`;
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: o.clientId,
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      nonce,
    }).toString();
    o.tell(`sign in to sign: ${authorize.href}`);
    o.open(authorize.href);
    const code = await callback.code;
    return await exchange(tokenEndpoint, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: o.clientId,
      code_verifier: verifier,
    });
  } finally {
    callback.close();
  }
}

/** Opens a url with $BROWSER, else the platform's opener; failures only leave the url printed. */
export function openerFor(env: TokenEnvironment, interactive: boolean): (url: string) => void {
  const browser = env.BROWSER;
  const command =
    browser ||
    (interactive
      ? process.platform === 'darwin'
        ? 'open'
        : process.platform === 'win32'
          ? undefined
          : 'xdg-open'
      : undefined);
  return (url) => {
    if (!command) return;
    try {
      const child = spawn(command, [url], { stdio: 'ignore', detached: true });
      child.on('error', () => {});
      child.unref();
    } catch {
      // the url is printed; the user opens it
    }
  };
}

function listenForCallback(state: string, timeoutMs: number) {
  let settle!: { resolve: (code: string) => void; reject: (e: GateError) => void };
  const code = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/auth/callback') {
      res.writeHead(404).end();
      return;
    }
    const error = url.searchParams.get('error');
    const got = url.searchParams.get('code');
    const ok = !error && got && url.searchParams.get('state') === state;
    res
      .writeHead(ok ? 200 : 400, { 'content-type': 'text/plain; charset=utf-8' })
      .end(ok ? 'signed in: you may close this window\n' : 'sign-in failed\n');
    if (error)
      settle.reject(
        new GateError('SIGN_OIDC_FLOW_FAILED', `the oidc issuer refused the sign-in: ${error}`),
      );
    else if (!got || url.searchParams.get('state') !== state)
      settle.reject(
        new GateError(
          'SIGN_OIDC_FLOW_FAILED',
          'the sign-in answer is not for this request (state)',
        ),
      );
    else settle.resolve(got);
  });
  const timer = setTimeout(
    () =>
      settle.reject(
        new GateError(
          'SIGN_OIDC_FLOW_FAILED',
          `no sign-in within ${Math.round(timeoutMs / 1000)} s`,
        ),
      ),
    timeoutMs,
  );
  code.catch(() => {});
  return new Promise<{ port: number; code: Promise<string>; close: () => void }>(
    (resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new GateError('SIGN_OIDC_FLOW_FAILED', 'cannot listen for the sign-in', { cause: err }),
        ),
      );
      server.listen(0, '127.0.0.1', () =>
        resolve({
          port: (server.address() as AddressInfo).port,
          code,
          close: () => {
            clearTimeout(timer);
            server.close();
            server.closeAllConnections();
          },
        }),
      );
    },
  );
}

async function exchange(endpoint: URL, form: Record<string, string>): Promise<string> {
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new GateError('SIGN_OIDC_FLOW_FAILED', `cannot reach ${endpoint.origin}`, {
      cause: err,
    });
  }
  const body = (await res.json().catch(() => ({}))) as { id_token?: unknown; error?: unknown };
  if (!res.ok || typeof body.id_token !== 'string')
    throw new GateError(
      'SIGN_OIDC_FLOW_FAILED',
      `the token endpoint answered HTTP ${res.status}${typeof body.error === 'string' ? ` (${body.error})` : ''} without an id token`,
    );
  return body.id_token;
}

async function getJSON(
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
  what: string,
  code: GateErrorCode,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new GateError(code, `cannot reach ${what} at ${url.origin}`, { cause: err });
  }
  if (!res.ok) throw new GateError(code, `${what} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch (err) {
    throw new GateError(code, `${what} answered something other than json`, { cause: err });
  }
}

function urlOf(v: unknown, field: string): URL {
  try {
    return new URL(String(v));
  } catch {
    throw new GateError('SIGN_OIDC_FLOW_FAILED', `the issuer's discovery document has no ${field}`);
  }
}
