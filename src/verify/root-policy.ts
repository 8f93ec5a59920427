import type { X509Certificate } from '@sigstore/core';
import { VerifyError } from '../errors.js';
import type { TrustRoot } from './trust.js';

/**
 * What one trusted root asks of the evidence it vouches for. @sigstore/verify takes one trust
 * material and one set of thresholds per Verifier, so merging several roots into one material
 * would make "needs a log entry" a global switch; the gate instead builds a Verifier per root
 * with that root's own rules.
 */
export interface RootPolicy {
  tlogThreshold: number;
  ctlogThreshold: number;
  /** the root has no transparency log: an RFC 3161 timestamp from its TSA stands in for one */
  timestampAuthorityOnly: boolean;
}

/**
 * A root with logs requires a log entry, as before. A root without (GitHub's instance: a Fulcio CA
 * and a TSA) cannot give one, so its certificates are checked at a trusted RFC 3161 timestamp,
 * and without CT logs there is no SCT to ask for.
 */
export function keylessPolicy(root: TrustRoot, tlogThreshold = 1): RootPolicy {
  const logs = root.material.tlogs.length > 0;
  return {
    tlogThreshold: logs ? tlogThreshold : 0,
    ctlogThreshold: root.material.ctlogs.length > 0 ? 1 : 0,
    timestampAuthorityOnly: !logs,
  };
}

/**
 * The roots whose certificate authorities could have issued `leaf` (a CA certificate with the
 * leaf's issuer name whose key verifies the leaf's signature); the chain itself is then checked
 * in full (entity-verifier.ts). Chosen by chain, never by the certificate's names: anyone can
 * write "GitHub, Inc." into a certificate, only the CA's key can sign one.
 */
export function issuingRoots(
  roots: TrustRoot[],
  leaf: X509Certificate,
  signed: (issuer: X509Certificate) => boolean = (issuer) => leaf.verify(issuer),
): TrustRoot[] {
  const issued = roots.filter((r) =>
    r.material.certificateAuthorities.some((ca) =>
      ca.certChain.some((c) => issues(c, leaf, signed)),
    ),
  );
  if (issued.length === 0) {
    throw new VerifyError(
      'CERTIFICATE_INVALID',
      "the signing certificate was issued by none of the trusted roots' certificate authorities",
    );
  }
  return issued;
}

/** `signed` is leaf.verify(issuer), or the same check made once per issuer key (verifier.ts). */
function issues(
  issuer: X509Certificate,
  leaf: X509Certificate,
  signed: (issuer: X509Certificate) => boolean,
): boolean {
  try {
    return issuer.subject.equals(leaf.issuer) && signed(issuer);
  } catch {
    // @sigstore/core parses lazily: a corrupt leaf throws here; the library says why later.
    return false;
  }
}

/**
 * Tries each root in order: the first that verifies is the one the evidence rests on. When none
 * does, the first root's failure is thrown (it is the likeliest issuer: roots are pre-filtered).
 */
export function firstRootThatVerifies<T>(
  roots: TrustRoot[],
  verify: (root: TrustRoot) => T,
): { root: TrustRoot; value: T } {
  let first: unknown;
  for (const root of roots) {
    try {
      return { root, value: verify(root) };
    } catch (err) {
      first ??= err;
    }
  }
  throw first ?? new VerifyError('VERIFICATION_FAILED', 'no trusted root to verify against');
}
