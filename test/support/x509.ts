import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * A small DER writer for test certificates: roots, intermediates and Fulcio-like leaves with
 * exactly the fields a chain test needs (validity, basic constraints, key usage, key ids, names,
 * SCTs), signed with ECDSA P-256 / SHA-256. Test-only.
 */

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body]);
}

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let l = n; l > 0; l = Math.floor(l / 256)) out.unshift(l % 256);
  return [0x80 | out.length, ...out];
}

export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
export const set = (...c: Buffer[]) => tlv(0x31, ...c);
export const octets = (b: Buffer) => tlv(0x04, b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
export const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
export const explicit = (n: number, ...c: Buffer[]) => tlv(0xa0 | n, ...c);

export function int(n: number | bigint): Buffer {
  let hex = BigInt(n).toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const v of rest) {
    const parts = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) parts.unshift((x & 0x7f) | 0x80);
    out.push(...parts);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime, whole seconds. */
export function time(d: Date): Buffer {
  const iso = d.toISOString();
  const s = iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13);
  return tlv(0x17, Buffer.from(s + iso.slice(14, 16) + iso.slice(17, 19) + 'Z', 'ascii'));
}

/** A name of one common name; '' is the empty name of a Fulcio leaf. */
export const name = (cn: string) => (cn ? seq(set(seq(oid('2.5.4.3'), utf8(cn)))) : seq());
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

export const ext = {
  basicConstraints: (ca: boolean, pathLen?: number) =>
    extension(
      '2.5.29.19',
      true,
      seq(...(ca ? [bool(true)] : []), ...(pathLen === undefined ? [] : [int(pathLen)])),
    ),
  /** bits by number: 0 digitalSignature, 5 keyCertSign, 6 cRLSign */
  keyUsage: (...bits: number[]) => {
    let v = 0;
    for (const b of bits) v |= 0x80 >> b;
    return extension('2.5.29.15', true, tlv(0x03, Buffer.from([0, v])));
  },
  subjectKeyId: (id: Buffer) => extension('2.5.29.14', false, octets(id)),
  authorityKeyId: (id: Buffer) => extension('2.5.29.35', false, seq(tlv(0x80, id))),
  sanURI: (uri: string) => extension('2.5.29.17', true, seq(tlv(0x86, Buffer.from(uri)))),
  fulcioIssuer: (iss: string) => extension('1.3.6.1.4.1.57264.1.8', false, utf8(iss)),
};

export interface Key {
  privateKey: KeyObject;
  publicKey: KeyObject;
  spki: Buffer;
  /** sha1 of the SPKI, as a key id */
  id: Buffer;
}

export function newKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey, spki, id: createHash('sha1').update(spki).digest() };
}

export interface CertSpec {
  subject: string;
  issuer: string;
  key: Key;
  signer: Key;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
  serial?: number;
}

export function tbsOf(spec: CertSpec, extensions = spec.extensions): Buffer {
  return seq(
    explicit(0, int(2)),
    int(spec.serial ?? 1),
    ECDSA_SHA256,
    name(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    spec.key.spki,
    ...(extensions.length > 0 ? [explicit(3, seq(...extensions))] : []),
  );
}

/** The certificate over `tbs` (as given: it may be any encoding), signed by `signer`. */
export function certOf(tbs: Buffer, signer: Key, signed: Buffer = tbs): Buffer {
  const sig = sign('sha256', signed, signer.privateKey);
  return seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
}

export const issue = (spec: CertSpec): Buffer => certOf(tbsOf(spec), spec.signer);

/**
 * An RFC 6962 SCT list extension for a precertificate whose TBS is `preTBS`, issued by the CA
 * whose key is `issuer`, signed by the CT log `log` at `at`.
 */
export function sctExtension(preTBS: Buffer, issuer: Key, log: Key, at: Date): Buffer {
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(BigInt(at.getTime()));
  const len24 = Buffer.from([
    preTBS.length >> 16,
    (preTBS.length >> 8) & 0xff,
    preTBS.length & 0xff,
  ]);
  const signed = Buffer.concat([
    Buffer.from([0, 0]), // v1, certificate_timestamp
    timestamp,
    Buffer.from([0, 1]), // precert_entry
    createHash('sha256').update(issuer.spki).digest(),
    len24,
    preTBS,
    Buffer.from([0, 0]), // no extensions
  ]);
  const sig = sign('sha256', signed, log.privateKey);
  const logID = createHash('sha256').update(log.spki).digest();
  const sct = Buffer.concat([
    Buffer.from([0]),
    logID,
    timestamp,
    Buffer.from([0, 0, 4, 3, sig.length >> 8, sig.length & 0xff]),
    sig,
  ]);
  const list = Buffer.concat([
    Buffer.from([
      (sct.length + 2) >> 8,
      (sct.length + 2) & 0xff,
      sct.length >> 8,
      sct.length & 0xff,
    ]),
    sct,
  ]);
  return extension('1.3.6.1.4.1.11129.2.4.2', false, octets(list));
}
