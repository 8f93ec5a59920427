import type { Evidence } from '../collect/types.js';
import { isPlainObject } from '../util/input.js';
import { IN_TOTO_PAYLOAD_TYPE } from './attestation.js';

const HEX: Record<string, number> = { sha256: 64, sha512: 128 };

/**
 * The digests a piece of evidence says it is about (`alg:hex`), read as cheap JSON before any
 * cryptography: an in-toto statement's subjects, or the image a cosign image signature signs.
 * Nothing read here is trusted: it only lets the gate skip evidence that plainly names none of
 * the subjects asked about. Undefined whenever the evidence cannot be read this way (full
 * verification then reports it with its code).
 */
export function statementSubjectsOf(
  e: Pick<Evidence, 'kind' | 'bytes' | 'payload'>,
): string[] | undefined {
  // read once per buffer: a source that keeps what it read (the file cache) hands the same
  // buffers to every decision
  const key = e.kind === 'image-signature' ? e.payload : e.bytes;
  const memo = key ? peeked.get(key) : undefined;
  if (memo && memo.kind === e.kind) return memo.named;
  const named = peek(e);
  if (key) peeked.set(key, { kind: e.kind, named });
  return named;
}

const peeked = new WeakMap<Buffer, { kind: Evidence['kind']; named: string[] | undefined }>();

function peek(e: Pick<Evidence, 'kind' | 'bytes' | 'payload'>): string[] | undefined {
  try {
    if (e.kind === 'image-signature') {
      const doc = JSON.parse((e.payload ?? Buffer.alloc(0)).toString('utf8')) as unknown;
      const image =
        isPlainObject(doc) && isPlainObject(doc.critical) ? doc.critical.image : undefined;
      const d = isPlainObject(image) ? image['docker-manifest-digest'] : undefined;
      return typeof d === 'string' && valid(d) ? [d.toLowerCase()] : undefined;
    }
    if (e.kind !== 'bundle') return undefined;
    const bundle = JSON.parse(e.bytes.toString('utf8')) as unknown;
    const env = isPlainObject(bundle) ? bundle.dsseEnvelope : undefined;
    if (!isPlainObject(env) || env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return undefined;
    if (typeof env.payload !== 'string') return undefined;
    const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as unknown;
    const subjects = isPlainObject(statement) ? statement.subject : undefined;
    if (!Array.isArray(subjects)) return undefined;
    const named: string[] = [];
    for (const s of subjects) {
      if (!isPlainObject(s) || !isPlainObject(s.digest)) continue;
      for (const [alg, hex] of Object.entries(s.digest)) {
        if (typeof hex === 'string' && valid(`${alg}:${hex}`))
          named.push(`${alg}:${hex.toLowerCase()}`);
      }
    }
    return named.length > 0 ? named : undefined;
  } catch {
    return undefined;
  }
}

function valid(d: string): boolean {
  const i = d.indexOf(':');
  const alg = d.slice(0, i);
  const hex = d.slice(i + 1);
  return HEX[alg] === hex.length && /^[0-9a-fA-F]+$/.test(hex);
}
