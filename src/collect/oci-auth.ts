import { GateError } from '../errors.js';
import type { HttpClient } from './http.js';
import { describeUrl, HttpClientError } from './http-support.js';
import { basicAuthorization, mayCarryCredentials, type Credential } from './oci-credentials.js';
import { transportAllowed } from './oci-ref.js';

/** A parsed `WWW-Authenticate` challenge (RFC 9110 section 11.6.1). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** The first challenge of the header; registries send one. Auth-param names are lowercased. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const param = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  let p: RegExpExecArray | null;
  while ((p = param.exec(m[2]!)) !== null && p[0] !== '') {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** The user's credentials for a registry, exchanged at its token realm for a bearer token. */
export interface Login {
  /** the registry host (`host[:port]`) the credentials are for */
  registry: string;
  credential: Credential & { kind: 'basic' | 'identity' };
}

/**
 * The bearer-token flow of the distribution spec's token authentication: a 401 names a realm, a
 * service and a scope; the realm answers `{token}` or `{access_token}`. Anonymously (how public
 * repositories on GHCR and Docker Hub are read) or with a login, the realm is asked with a GET,
 * the login's username and password as HTTP basic auth; an identity token (OAuth2 refresh token)
 * is POSTed as a `refresh_token` grant (the spec's OAuth2 flow), and a realm without that flow
 * (404) is asked with the GET instead, as go-containerregistry does. Credentials go to the realm
 * only over https, or plain http to loopback or the registry's own insecure host; the client
 * follows no redirect from it. Tokens are kept per realm, service, scope and credential for the
 * life of the client.
 */
export class TokenCache {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    private readonly http: HttpClient,
    private readonly insecure: readonly string[],
    private readonly timeoutMs: number,
  ) {}

  /**
   * A token for the challenge and our own scope: the challenge's scope names the repository of
   * the request that drew it, and only pull is ever asked for.
   */
  token(challenge: Challenge, scope: string, signal?: AbortSignal, login?: Login): Promise<string> {
    const realm = challenge.params.realm ?? '';
    const service = challenge.params.service;
    const key = cacheKey(challenge, scope, login);
    let t = this.tokens.get(key);
    if (!t) {
      t = this.fetch(realm, service, scope, signal, login);
      // A failed attempt is not remembered: the next decision asks again.
      t.catch(() => this.tokens.delete(key));
      this.tokens.set(key, t);
    }
    return t;
  }

  /** Forgets a token the registry no longer accepts. */
  forget(challenge: Challenge, scope: string, login?: Login): void {
    this.tokens.delete(cacheKey(challenge, scope, login));
  }

  private async fetch(
    realm: string,
    service: string | undefined,
    scope: string,
    signal?: AbortSignal,
    login?: Login,
  ) {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw authFailed(
        `the registry's token realm ${JSON.stringify(realm.slice(0, 100))} is not a url`,
      );
    }
    // The realm is chosen by the registry: it gets the same transport rule as the registry.
    if (!transportAllowed(url, this.insecure)) {
      throw new GateError(
        'SOURCE_INSECURE_TRANSPORT',
        `token realm ${describeUrl(realm)} is plain http on a host not configured as insecure`,
      );
    }
    if (login && !mayCarryCredentials(url, login.registry, this.insecure)) {
      throw new GateError(
        'SOURCE_INSECURE_TRANSPORT',
        `token realm ${describeUrl(realm)} is plain http on another host than ${login.registry}: the gate sends no credentials there`,
      );
    }
    let body: unknown;
    try {
      body = await this.ask(url, service, scope, signal, login);
    } catch (err) {
      const status = err instanceof HttpClientError ? err.status : undefined;
      if (login && (status === 401 || status === 403)) {
        throw authFailed(
          `token endpoint ${describeUrl(realm)} refused the credentials from ${login.credential.source} for ${login.registry} (http ${status})`,
        );
      }
      // an anonymous token refused: the repository is private (or gone), not a broken registry
      if (status === 401 || status === 403) {
        throw authFailed(
          `token endpoint ${describeUrl(realm)} refused an anonymous token for ${scope} (http ${status}): the repository may be private; see sources.oci credentials`,
        );
      }
      throw err;
    }
    const b = body as { token?: unknown; access_token?: unknown } | null;
    const token = typeof b?.token === 'string' ? b.token : b?.access_token;
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw authFailed(`token endpoint ${describeUrl(realm)} answered no token`);
    }
    return token;
  }

  private async ask(
    realm: URL,
    service: string | undefined,
    scope: string,
    signal: AbortSignal | undefined,
    login: Login | undefined,
  ): Promise<unknown> {
    const opts = { signal, timeoutMs: this.timeoutMs, maxBytes: 1024 * 1024 };
    const c = login?.credential;
    if (c?.kind === 'identity') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: c.token,
        client_id: 'gate',
        scope,
        ...(service ? { service } : {}),
      });
      try {
        return await this.http.postJSON(realm.toString(), form, {
          ...opts,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
      } catch (err) {
        // not every token server speaks OAuth2: the GET of the token spec is the fallback
        if (!(err instanceof HttpClientError && err.status === 404)) throw err;
      }
    }
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', scope);
    const basic = c?.kind === 'basic' ? c : c?.basic;
    const headers = basic ? { authorization: basicAuthorization(basic) } : undefined;
    return this.http.getJSON(url.toString(), { ...opts, ...(headers ? { headers } : {}) });
  }
}

/** Two credentials never share a token: the key names the credential (by its hash) too. */
function cacheKey(challenge: Challenge, scope: string, login?: Login): string {
  const p = challenge.params;
  return `${p.realm ?? ''} ${p.service ?? ''} ${scope} ${login?.credential.id ?? 'anonymous'}`;
}

export const authFailed = (message: string) => new GateError('SOURCE_AUTH_FAILED', message);
