import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { crypto as core, type ASN1Obj, type X509Certificate } from '@sigstore/core';
import { VerificationError, type TrustMaterial } from '@sigstore/verify';

/**
 * X.509 path building for the Fulcio chain and the TSA chain, checking exactly what
 * @sigstore/verify 3.1's CertificateChainVerifier checks, in the same order with the same
 * errors: issuers found by authority/subject key id (or by name), each link's signature, every
 * certificate after the leaf a CA (basic constraints and keyCertSign), name chaining, path length
 * constraints, the shortest path that reaches a certificate of the trusted CA, and every
 * certificate of it valid at the signing time.
 *
 * Why not the library's: it does all of that from scratch for every bundle and every timestamp,
 * including the trusted intermediates and roots, and it compares and verifies certificates by
 * re-encoding them to DER (X509Certificate.equals and verify call toDER, which allocates per
 * ASN.1 node) and by creating their public keys again each time: about 85% of a keyless bundle's
 * verification. Here what depends only on the trusted root (each trusted certificate's fields,
 * DER, public key, its paths up to a self-signed root) is computed once per trusted certificate
 * object, so once per trusted root of a loaded Trust and never shared with another root; what
 * depends on the bundle (the leaf's fields, its signature under each candidate issuer, the
 * validity at each timestamp) is computed for every bundle, the leaf's signature once however
 * many timestamps and roots ask for it.
 *
 * Whatever this does not model exactly (a leaf that is not DER-canonical, whose fields do not
 * parse, that could issue a trusted certificate or is one; a trusted certificate whose fields do
 * not parse) raises UseLibrary, and the caller verifies that bundle with @sigstore/verify itself.
 */

export type CertAuthority = TrustMaterial['certificateAuthorities'][number];

/** The fast path does not model this input: verify the bundle with @sigstore/verify instead. */
export class UseLibrary extends Error {}

/** What path building reads of one certificate, read once. */
export interface Cert {
  x509: X509Certificate;
  /** DER as X509Certificate.equals compares it */
  der: Buffer;
  subject: Buffer;
  issuer: Buffer;
  selfNamed: boolean;
  /** extAuthorityKeyID's keyIdentifier (undefined without the extension or the field) */
  aki: Buffer | undefined;
  /** has a subject key id extension (then issuers are matched by it, not by name) */
  hasSKI: boolean;
  ski: Buffer | undefined;
  /** X509Certificate.isCA: basic constraints CA and, with a key usage extension, keyCertSign */
  isCA: boolean;
  /** basic constraints CA flag alone, which is what the path length check asks */
  bcCA: boolean;
  pathLen: bigint | undefined;
  notBefore: Date;
  notAfter: Date;
  tbs: Buffer;
  sigValue: Buffer;
  sigAlg: string;
  spki: Buffer;
  /** the subject public key, or why node could not read it */
  key: KeyObject | Error;
  spkiDigest?: Buffer;
  /** signature checks made with this certificate as the subject, by issuer */
  verified?: Map<Cert, boolean | Error>;
}

const trustedCerts = new WeakMap<X509Certificate, Cert | null>();

/** A certificate from the trusted root, prepared once per parsed certificate; null if odd. */
export function trustedCert(x509: X509Certificate): Cert | null {
  let c = trustedCerts.get(x509);
  if (c === undefined) {
    try {
      c = certOf(x509, x509.root.toDER(), x509.tbsCertificate.toDER(), x509.publicKey);
    } catch {
      c = null;
    }
    trustedCerts.set(x509, c);
  }
  return c;
}

function certOf(
  x509: X509Certificate,
  der: Buffer,
  tbs: Buffer,
  spki: Buffer,
  spkiObj?: ASN1Obj,
): Cert {
  const bc = x509.extBasicConstraints;
  const aki = x509.extAuthorityKeyID;
  const ski = x509.extSubjectKeyID;
  const subject = x509.subject;
  const issuer = x509.issuer;
  const bcCA = bc?.isCA ?? false;
  return {
    x509,
    der,
    subject,
    issuer,
    selfNamed: subject.equals(issuer),
    aki: aki ? aki.keyIdentifier : undefined,
    hasSKI: ski !== undefined,
    ski: ski ? ski.keyIdentifier : undefined,
    isCA: x509.isCA,
    bcCA,
    pathLen: bc && bcCA ? bc.pathLenConstraint : undefined,
    notBefore: x509.notBefore,
    notAfter: x509.notAfter,
    tbs,
    sigValue: x509.signatureValue,
    sigAlg: x509.signatureAlgorithm,
    spki,
    key: keyOf(spki, spkiObj),
  };
}

function keyOf(spki: Buffer, spkiObj?: ASN1Obj): KeyObject | Error {
  try {
    return (spkiObj && ecKey(spkiObj)) || core.createPublicKey(spki);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

// id-ecPublicKey and the named curves a Fulcio leaf key is on, as DER OID contents
const EC_PUBLIC_KEY = '2a8648ce3d0201';
const CURVES: Record<string, { crv: string; size: number }> = {
  '2a8648ce3d030107': { crv: 'P-256', size: 32 },
  '2b81040022': { crv: 'P-384', size: 48 },
  '2b81040023': { crv: 'P-521', size: 66 },
};

/**
 * The same public key as createPublicKey(spki), made from its coordinates: node (OpenSSL 3)
 * takes about twice a signature check's time to decode a DER SubjectPublicKeyInfo and half of
 * that for a JWK, and every bundle brings a new leaf key. Only a named-curve key with an
 * uncompressed point is read this way (node checks the point is on the curve either way); any
 * other, or one node refuses, is left to the DER decoder.
 */
function ecKey(spkiObj: ASN1Obj): KeyObject | undefined {
  const [alg, bits] = spkiObj.subs;
  const [oid, params] = alg?.subs ?? [];
  if (spkiObj.subs.length !== 2 || alg?.subs.length !== 2 || !oid || !params || !bits) return;
  if (!oid.tag.isOID() || oid.value.toString('hex') !== EC_PUBLIC_KEY) return;
  const curve = params.tag.isOID() ? CURVES[params.value.toString('hex')] : undefined;
  const point = bits.value;
  if (!curve || !bits.tag.isBitString() || point.length !== 2 + 2 * curve.size) return;
  if (point[0] !== 0 || point[1] !== 0x04) return;
  try {
    return createPublicKey({
      format: 'jwk',
      key: {
        kty: 'EC',
        crv: curve.crv,
        x: point.subarray(2, 2 + curve.size).toString('base64url'),
        y: point.subarray(2 + curve.size).toString('base64url'),
      },
    });
  } catch {
    return undefined;
  }
}

/**
 * The bundle's signing certificate, read from the DER bytes it was parsed from. Only a
 * DER-canonical certificate is taken: then its bytes are exactly what @sigstore/core's toDER
 * would produce, so the signature is checked over the same to-be-signed bytes and the SCT over
 * the same precertificate, without re-encoding anything.
 */
export function leafCert(x509: X509Certificate, raw: Buffer): Cert {
  const root = x509.root;
  if (root.subs.length === 0 || derSize(root) !== raw.length) {
    throw new UseLibrary('signing certificate is not DER-canonical');
  }
  let cert: Cert;
  try {
    const tbsObj = root.subs[0]!;
    const spki = spans(tbsObj)[6];
    if (!spki) throw new UseLibrary('signing certificate has too few fields');
    cert = certOf(x509, raw, spans(root)[0]!, spki, tbsObj.subs[6]);
  } catch (err) {
    throw new UseLibrary('signing certificate fields do not parse', { cause: err });
  }
  if (cert.key instanceof Error) {
    throw new UseLibrary('signing certificate key', { cause: cert.key });
  }
  cert.verified = new Map();
  return cert;
}

/** Whether `issuer`'s key verifies `subject`'s signature: X509Certificate.verify(issuer). */
export function signedBy(subject: Cert, issuer: Cert): boolean {
  const memo = subject.verified?.get(issuer);
  if (memo !== undefined) {
    if (memo instanceof Error) throw memo;
    return memo;
  }
  let ok: boolean | Error;
  if (issuer.key instanceof Error) ok = issuer.key;
  else ok = core.verify(subject.tbs, issuer.key, subject.sigValue, subject.sigAlg);
  subject.verified?.set(issuer, ok);
  if (ok instanceof Error) throw ok;
  return ok;
}

/** Possible issuers of `c` among `local`, as CertificateChainVerifier.findIssuer finds them. */
function findIssuers(c: Cert, local: Cert[]): Cert[] {
  if (c.selfNamed && signedBy(c, c)) return [c];
  const kid = c.aki;
  return local
    .filter((p) => (kid && p.hasSKI ? p.ski!.equals(kid) : p.subject.equals(c.issuer)))
    .filter((p) => {
      try {
        return signedBy(c, p);
      } catch {
        return false;
      }
    });
}

type Paths = (c: Cert) => Cert[][];

/** Every path from `c` up to a self-signed certificate (CertificateChainVerifier.buildPaths). */
function buildPaths(c: Cert, local: Cert[], pathsOf: Paths): Cert[][] {
  const issuers = findIssuers(c, local);
  if (issuers.length === 0) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: 'no valid certificate path found',
    });
  }
  const paths: Cert[][] = [];
  for (const issuer of issuers) {
    if (issuer.der.equals(c.der)) {
      paths.push([c]);
      continue;
    }
    for (const sub of pathsOf(issuer)) paths.push([issuer, ...sub]);
  }
  return paths;
}

/** The path from `leaf` to the trusted certificates, checked but not yet against a time. */
function sortAndCheck(leaf: Cert, trusted: Cert[], local: Cert[], pathsOf: Paths): Cert[] {
  const paths = buildPaths(leaf, local, pathsOf).filter((p) => p.some((c) => trusted.includes(c)));
  if (paths.length === 0) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: 'no trusted certificate path found',
    });
  }
  // the last of the shortest, as the library's reduce picks it; its final certificate is the
  // self-signed root a second time
  const shortest = paths.reduce((prev, curr) => (prev.length < curr.length ? prev : curr));
  const path = [leaf, ...shortest].slice(0, -1);
  checkPath(path);
  return path;
}

function checkPath(path: Cert[]): void {
  if (path.length < 1) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: 'certificate chain must contain at least one certificate',
    });
  }
  if (!path.slice(1).every((c) => c.isCA)) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: 'intermediate certificate is not a CA',
    });
  }
  for (let i = path.length - 2; i >= 0; i--) {
    if (!path[i]!.issuer.equals(path[i + 1]!.subject)) {
      throw new VerificationError({
        code: 'CERTIFICATE_ERROR',
        message: 'incorrect certificate name chaining',
      });
    }
  }
  path.forEach((c, i) => {
    // the number of intermediates (not counting the leaf) allowed below this CA
    if (c.bcCA && c.pathLen !== undefined && c.pathLen < i - 1) {
      throw new VerificationError({
        code: 'CERTIFICATE_ERROR',
        message: 'path length constraint exceeded',
      });
    }
  });
}

function validAt(path: Cert[], time: Date): void {
  if (!path.every((c) => c.notBefore <= time && time <= c.notAfter)) {
    throw new VerificationError({
      code: 'CERTIFICATE_ERROR',
      message: 'certificate is not valid or expired at the specified date',
    });
  }
}

/** Drops later copies of a certificate (by DER), as the library's dedupeCertificates does. */
function dedupe(certs: Cert[]): Cert[] {
  return certs.filter((c, i) => certs.findIndex((d) => d.der.equals(c.der)) === i);
}

/** One trusted Fulcio CA, prepared once: its certificates and each one's paths up. */
interface PreparedCA {
  trusted: Cert[];
  /** the CA's certificates without repeats, in the order the library searches them */
  local: Cert[];
  /** each certificate's paths up to its root among `local`, or the error finding them threw */
  paths: Map<Cert, Cert[][] | Error>;
  /** per bundle leaf: its checked path through this CA, or the error (time-independent) */
  leaves: WeakMap<Cert, Cert[] | Error>;
}

const preparedCAs = new WeakMap<CertAuthority, PreparedCA | null>();

function prepareCA(ca: CertAuthority): PreparedCA | null {
  let p = preparedCAs.get(ca);
  if (p !== undefined) return p;
  const trusted = ca.certChain.map(trustedCert);
  if (trusted.some((c) => c === null)) {
    p = null;
  } else {
    const all = trusted as Cert[];
    const local = dedupe(all);
    const paths = new Map<Cert, Cert[][] | Error>();
    // The library builds these paths with the leaf among the candidates; a leaf that could be
    // a candidate issuer of any of them is sent to the library (see chainPath), so for every
    // other leaf these are the paths the library would build.
    const pathsOf: Paths = (c) => buildPaths(c, local, pathsOf);
    for (const c of local) {
      try {
        paths.set(c, pathsOf(c));
      } catch (err) {
        paths.set(c, err instanceof Error ? err : new Error(String(err)));
      }
    }
    p = { trusted: all, local, paths, leaves: new WeakMap() };
  }
  preparedCAs.set(ca, p);
  return p;
}

/** The leaf's checked path through one CA (CertificateChainVerifier.sort and checkPath). */
function chainPath(leaf: Cert, ca: CertAuthority): Cert[] {
  const p = prepareCA(ca);
  if (!p) throw new UseLibrary('a trusted certificate does not parse');
  const known = p.leaves.get(leaf);
  if (known instanceof Error) throw known;
  if (known) return known;
  for (const t of p.local) {
    if (t.der.equals(leaf.der)) throw new UseLibrary('the leaf is a trusted certificate');
    const candidate =
      t.aki && leaf.hasSKI ? leaf.ski!.equals(t.aki) : leaf.subject.equals(t.issuer);
    if (candidate)
      throw new UseLibrary('the leaf names itself the issuer of a trusted certificate');
  }
  const pathsOf: Paths = (c) => {
    const paths = p.paths.get(c);
    if (paths instanceof Error) throw paths;
    if (!paths) throw new UseLibrary('path through an unknown certificate');
    return paths;
  };
  try {
    const path = sortAndCheck(leaf, p.trusted, [...p.local, leaf], pathsOf);
    p.leaves.set(leaf, path);
    return path;
  } catch (err) {
    if (!(err instanceof UseLibrary)) p.leaves.set(leaf, err as Error);
    throw err;
  }
}

/**
 * verifyCertificateChain of @sigstore/verify: the path through the first CA valid at `time`
 * that verifies, else CERTIFICATE_ERROR with the last CA's reason.
 */
export function verifyLeafChain(time: Date, leaf: Cert, cas: CertAuthority[]): Cert[] {
  let error: unknown;
  for (const ca of cas) {
    if (!(ca.validFor.start <= time && ca.validFor.end >= time)) continue;
    try {
      const path = chainPath(leaf, ca);
      validAt(path, time);
      return path;
    } catch (err) {
      if (err instanceof UseLibrary) throw err;
      error = err;
    }
  }
  throw new VerificationError({
    code: 'CERTIFICATE_ERROR',
    message: 'Failed to verify certificate chain',
    cause: error,
  });
}

/** One trusted timestamp authority, prepared once: its signing key and its checked chain. */
interface PreparedTSA {
  key: KeyObject | Error;
  path: Cert[] | Error;
}

const preparedTSAs = new WeakMap<CertAuthority, PreparedTSA | null>();

function prepareTSA(ca: CertAuthority): PreparedTSA | null {
  let p = preparedTSAs.get(ca);
  if (p !== undefined) return p;
  const certs = ca.certChain.map(trustedCert);
  if (certs.length === 0 || certs.some((c) => c === null)) {
    p = null;
  } else {
    const [leaf, ...cas] = certs as Cert[];
    const local = dedupe([...cas, leaf!]);
    const pathsOf: Paths = (c) => buildPaths(c, local, pathsOf);
    let path: Cert[] | Error;
    try {
      path = sortAndCheck(leaf!, cas, local, pathsOf);
    } catch (err) {
      path = err instanceof Error ? err : new Error(String(err));
    }
    p = { key: leaf!.key, path };
  }
  preparedTSAs.set(ca, p);
  return p;
}

/**
 * The TSA's signing key once its certificate chain is checked at `time`, as
 * @sigstore/verify's verifyTimestampForCA does before it checks the timestamp's signature.
 * Throws when the chain does not verify (the library's reason is not reported: it answers
 * "timestamp could not be verified" whatever the reason).
 */
export function tsaSigningKey(ca: CertAuthority, time: Date): KeyObject {
  const p = prepareTSA(ca);
  if (!p) throw new UseLibrary('a trusted timestamp authority certificate does not parse');
  if (p.key instanceof Error) throw p.key;
  if (p.path instanceof Error) throw p.path;
  validAt(p.path, time);
  return p.key;
}

/**
 * The RFC 6962 precertificate to-be-signed bytes of a DER-canonical leaf: its TBS with the
 * first SCT list extension taken out, as the library's verifySCTs re-encodes it. When that was
 * the only extension the library keeps the extension sequence's original bytes (toDER of an
 * ASN.1 object without children writes its value): so does this.
 */
export function preCertTBS(leaf: Cert, sctIndex: number): Buffer {
  const tbsObj = leaf.x509.root.subs[0]!;
  const wrapAt = tbsObj.subs.findIndex((s) => s.tag.isContextSpecific(0x03));
  const parts: Buffer[] = [];
  spans(tbsObj).forEach((span, i) => {
    if (i !== wrapAt) {
      parts.push(span);
      return;
    }
    const wrap = tbsObj.subs[i]!;
    const inner: Buffer[] = [];
    spans(wrap).forEach((wspan, j) => {
      if (j !== 0) {
        inner.push(wspan);
        return;
      }
      const seq = wrap.subs[0]!;
      const kept = spans(seq).filter((_, k) => k !== sctIndex);
      inner.push(encode(seq, kept.length > 0 ? Buffer.concat(kept) : seq.value));
    });
    parts.push(encode(wrap, Buffer.concat(inner)));
  });
  return encode(tbsObj, Buffer.concat(parts));
}

/** sha256 of a certificate's SubjectPublicKeyInfo DER: the issuer key hash of an SCT. */
export function spkiDigest(c: Cert): Buffer {
  return (c.spkiDigest ??= createHash('sha256').update(c.spki).digest());
}

// DER sizes and encodings of ASN.1 objects parsed by @sigstore/core, which records each
// object's content (a view of the bytes parsed) but not its header. Children are parsed out of
// their parent's content in place: each child's encoding ends where its content ends and starts
// where the previous one's ended.

function lengthSize(len: number): number {
  if (len < 0x80) return 1;
  let n = 1;
  for (let l = len; l > 0; l = Math.floor(l / 256)) n++;
  return n;
}

/** The size of `obj` encoded as @sigstore/core's toDER encodes it (minimal lengths). */
function derSize(obj: ASN1Obj): number {
  let content = 0;
  if (obj.subs.length === 0) content = obj.value.length;
  else for (const s of obj.subs) content += derSize(s);
  return 1 + lengthSize(content) + content;
}

/** The encodings of `obj`'s children as parsed. */
function spans(obj: ASN1Obj): Buffer[] {
  const content = obj.value;
  let start = 0;
  return obj.subs.map((s) => {
    if (s.value.buffer !== content.buffer) throw new UseLibrary('not parsed in place');
    const end = s.value.byteOffset + s.value.length - content.byteOffset;
    if (end < start || end > content.length) throw new UseLibrary('not parsed in place');
    const span = content.subarray(start, end);
    start = end;
    return span;
  });
}

/** The encoding of `parent`'s child `index` as parsed, when it is what toDER would write. */
export function parsedChild(parent: ASN1Obj, index: number): Buffer | undefined {
  const child = parent.subs[index];
  const span = child ? spans(parent)[index] : undefined;
  return span && span.length === derSize(child!) ? span : undefined;
}

function encode(obj: ASN1Obj, content: Buffer): Buffer {
  const len = content.length;
  const header: number[] = [obj.tag.toDER()];
  if (len < 0x80) {
    header.push(len);
  } else {
    const bytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l % 256);
    header.push(0x80 | bytes.length, ...bytes);
  }
  return Buffer.concat([Buffer.from(header), content]);
}
