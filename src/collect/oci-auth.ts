import { GateError } from '../errors.js';
import type { HttpClient } from './http.js';
import { describeUrl } from './http-support.js';
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

/**
 * The anonymous bearer-token flow of the distribution spec's token authentication: a 401 names a
 * realm, a service and a scope; a GET to the realm answers `{token}` or `{access_token}`. Tokens
 * are kept per realm, service and scope for the life of the client. No credentials are sent:
 * this is how public repositories (GHCR, Docker Hub) are read.
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
  token(challenge: Challenge, scope: string, signal?: AbortSignal): Promise<string> {
    const realm = challenge.params.realm ?? '';
    const service = challenge.params.service;
    const key = `${realm} ${service ?? ''} ${scope}`;
    let t = this.tokens.get(key);
    if (!t) {
      t = this.fetch(realm, service, scope, signal);
      // A failed attempt is not remembered: the next decision asks again.
      t.catch(() => this.tokens.delete(key));
      this.tokens.set(key, t);
    }
    return t;
  }

  /** Forgets a token the registry no longer accepts. */
  forget(challenge: Challenge, scope: string): void {
    const p = challenge.params;
    this.tokens.delete(`${p.realm ?? ''} ${p.service ?? ''} ${scope}`);
  }

  private async fetch(
    realm: string,
    service: string | undefined,
    scope: string,
    signal?: AbortSignal,
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
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', scope);
    const body = await this.http.getJSON(url.toString(), {
      signal,
      timeoutMs: this.timeoutMs,
      maxBytes: 1024 * 1024,
    });
    const b = body as { token?: unknown; access_token?: unknown } | null;
    const token = typeof b?.token === 'string' ? b.token : b?.access_token;
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw authFailed(`token endpoint ${describeUrl(realm)} answered no token`);
    }
    return token;
  }
}

export const authFailed = (message: string) => new GateError('SOURCE_AUTH_FAILED', message);
