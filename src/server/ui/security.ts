import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Nothing from another host, no script at all, no framing: the pages are plain server-rendered
 * HTML with one same-origin stylesheet.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // audit data is not for shared caches, nor for the browser's back-forward cache after logout
  'cache-control': 'no-store',
};

/** The session cookie's name: under TLS the __Host- prefix makes the browser insist on Secure. */
export function cookieName(secure: boolean): string {
  return secure ? '__Host-gate-ui' : 'gate-ui';
}

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure under
 * TLS, Path=/ (the __Host- prefix requires it); expires with the session.
 */
export function sessionCookie(secure: boolean, id: string, maxAgeSeconds: number): string {
  const flags = ['Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (secure) flags.push('Secure');
  return [`${cookieName(secure)}=${id}`, ...flags].join('; ');
}

export function clearedCookie(secure: boolean): string {
  return sessionCookie(secure, '', 0);
}

/** The value of one cookie from the Cookie header; the first when a name repeats. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A POST must come from a page of this server. SameSite=Strict already keeps the cookie off other
 * sites' requests; this also refuses a sign-in forced by another site (login CSRF) and any
 * browser that does not honour SameSite. The Origin must be this server's own; under
 * Referrer-Policy no-referrer a browser sends `Origin: null` on a form's POST, and then Fetch
 * Metadata decides: Sec-Fetch-Site, which no page's script can set, must say same-origin. A
 * request with neither (not from a browser) is refused.
 */
export function sameOrigin(request: FastifyRequest, secure: boolean): boolean {
  const origin = request.headers.origin;
  const host = request.headers.host;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  if (typeof host === 'string' && origin === `${secure ? 'https' : 'http'}://${host}`) return true;
  return (origin === undefined || origin === 'null') && site === 'same-origin';
}

export function applySecurityHeaders(reply: FastifyReply): void {
  reply.headers(SECURITY_HEADERS);
}
