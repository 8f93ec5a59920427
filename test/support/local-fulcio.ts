import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { initializeCA } from '@sigstore/mock';
import type { Handler } from './http-service.js';
import { FULCIO_OIDS, OID_ISSUER_V1 } from './fulcio-oids.js';

type CA = Awaited<ReturnType<typeof initializeCA>>;

export const SIGNING_CERT_PATH = '/api/v2/signingCert';

/** Claim of the (unsigned) test identity token carrying extra extensions, keyed by OID. */
export const EXTENSIONS_CLAIM = 'x_gate_extensions';

export function toPEM(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function decodeJwtClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) throw new Error('malformed identity token');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * A Fulcio v2 `signingCert` handler over @sigstore/mock's CA. @sigstore/mock's own fulcioHandler
 * derives extensions from GitHub token claims and forces `https://github.com/` prefixes, so it
 * cannot mint arbitrary extension values; this one takes SAN from `sub`, the issuer from `iss`
 * (written as both the v1 and v2 issuer extensions, as real Fulcio does) and any other extension
 * verbatim from EXTENSIONS_CLAIM. Like real Fulcio it checks proof of possession (a signature
 * over `sub`). The CA embeds an SCT from its CT log in every certificate.
 */
export function signingCertHandler(ca: CA): Handler {
  return async (body, headers) => {
    try {
      const req = JSON.parse(body) as {
        credentials?: { oidcIdentityToken: string };
        publicKeyRequest: { publicKey: { content: string }; proofOfPossession: string };
      };
      // Fulcio v2 takes the token in the body or, as sigstore-go (cosign v3) sends it, as a
      // bearer token.
      const bearer = /^Bearer (.+)$/i.exec(headers.authorization ?? '')?.[1];
      const token = req.credentials?.oidcIdentityToken ?? bearer;
      if (!token) return { statusCode: 401, response: 'no identity token' };
      const claims = decodeJwtClaims(token);
      const sub = String(claims.sub ?? '');
      const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
      const pem = req.publicKeyRequest.publicKey.content;
      const pop = Buffer.from(req.publicKeyRequest.proofOfPossession, 'base64');
      if (!sub || !cryptoVerify('sha256', Buffer.from(sub), pem, pop)) {
        return { statusCode: 400, response: 'proof of possession failed' };
      }
      const extra = (claims[EXTENSIONS_CLAIM] ?? {}) as Record<string, string>;
      const extensions = [
        ...(iss ? [{ oid: OID_ISSUER_V1, value: iss, legacy: true }] : []),
        ...Object.entries({ ...(iss ? { [FULCIO_OIDS.issuer]: iss } : {}), ...extra }).map(
          ([oid, value]) => ({ oid, value }),
        ),
      ];
      const spki = createPublicKey(pem).export({ format: 'der', type: 'spki' });
      const leaf = await ca.issueCertificate({
        publicKey: spki,
        subjectAltName: sub,
        extensions,
      });
      const root = ca.rootCertificate;
      const chain = [leaf, root].map((c) =>
        toPEM(Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
      );
      const response = JSON.stringify({
        signedCertificateEmbeddedSct: { chain: { certificates: chain } },
      });
      // Real Fulcio answers 200 (sigstore-go refuses anything else)
      return { statusCode: 200, response, contentType: 'application/json' };
    } catch (e) {
      return { statusCode: 400, response: e instanceof Error ? e.message : String(e) };
    }
  };
}
