import { createRequire } from 'node:module';
import { GateError } from '../errors.js';

// Both are native addons (CommonJS), loaded on the first body to decode rather than with the
// gate: a command that never reads GitHub's blob store does not pay for them (issue 11).
const require = createRequire(import.meta.url);
const uncompressSync: typeof import('snappy').uncompressSync = (...args) =>
  (require('snappy') as typeof import('snappy')).uncompressSync(...args);
const crc32c = {
  calculate: (data: Uint8Array): number =>
    (require('@chainsafe/fast-crc32c') as typeof import('@chainsafe/fast-crc32c')).calculate(data),
};

/**
 * A bundle body as GitHub's blob storage serves it: snappy block format, snappy framed format, or
 * plain JSON, told apart by their first bytes (the blob host's content-type is not relied on).
 * Every declared size is checked against `max` before anything of that size is allocated: a few
 * hostile bytes may declare gigabytes.
 */
export function decodeBundleBody(body: Buffer, max: number): Buffer {
  if (isPlainJSON(body)) {
    if (body.length > max) throw tooLarge(body.length, max);
    return body;
  }
  if (body.subarray(0, STREAM_ID.length).equals(STREAM_ID)) return decodeFramed(body, max);
  return decodeBlock(body, max);
}

/** A JSON object may start with whitespace (RFC 8259 section 2); a snappy stream never does. */
function isPlainJSON(body: Buffer): boolean {
  const first = body.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  return first === 0x7b;
}

/** The block format: a varint of the uncompressed length, then literals and copies. */
export function decodeBlock(block: Buffer, max: number): Buffer {
  const declared = uncompressedLength(block);
  if (declared > max) throw tooLarge(declared, max);
  try {
    // snappy (the Rust snap crate) refuses a stream whose output is shorter or longer than declared.
    return uncompressSync(block, { asBuffer: true }) as Buffer;
  } catch (err) {
    throw malformed(`snappy block is corrupt: ${lowerFirst(err)}`, err);
  }
}

/** The leading little-endian base-128 varint; at most 5 bytes, and below 2^32 (format_description.txt). */
export function uncompressedLength(block: Buffer): number {
  let value = 0;
  for (let i = 0; i < 5 && i < block.length; i++) {
    const byte = block[i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) {
      if (value > 0xffffffff) break;
      return value;
    }
  }
  throw malformed('snappy block has no valid length header');
}

// framing_format.txt: chunk types, and the stream identifier chunk every stream starts with.
const STREAM_ID = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
const COMPRESSED = 0x00;
const UNCOMPRESSED = 0x01;
const MAX_CHUNK_DATA = 65_536;

/**
 * The framed format. The snappy package decodes it too, but only as a stream that cannot be told
 * a size cap before it allocates, so the chunks are walked here (framing_format.txt) and each
 * block goes to the block decoder once its declared size fits.
 */
export function decodeFramed(body: Buffer, max: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (let pos = 0; pos < body.length;) {
    if (pos + 4 > body.length) throw malformed('snappy frame ends inside a chunk header');
    const type = body[pos]!;
    const length = body.readUIntLE(pos + 1, 3);
    const data = body.subarray(pos + 4, pos + 4 + length);
    if (data.length < length) throw malformed('snappy frame ends inside a chunk');
    pos += 4 + length;
    if (type === 0xff) {
      if (!data.equals(STREAM_ID.subarray(4))) throw malformed('snappy frame has a bad stream id');
      continue;
    }
    // 0x80-0xfe are skippable (0xfe is padding); 0x02-0x7f are reserved and must not be skipped.
    if (type >= 0x80) continue;
    if (type !== COMPRESSED && type !== UNCOMPRESSED) {
      throw malformed(`snappy frame has a reserved chunk type 0x${type.toString(16)}`);
    }
    const chunk = chunkData(type, data, max - total, max);
    total += chunk.length;
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}

/** One data chunk: a masked CRC-32C of the uncompressed bytes, then the bytes or their block. */
function chunkData(type: number, data: Buffer, room: number, max: number): Buffer {
  if (data.length < 4) throw malformed('snappy frame has a data chunk without a checksum');
  const payload = data.subarray(4);
  const declared = type === COMPRESSED ? uncompressedLength(payload) : payload.length;
  if (declared > MAX_CHUNK_DATA) throw malformed('snappy frame has a chunk over 65536 bytes');
  if (declared > room) {
    throw new GateError('SOURCE_TOO_LARGE', `bundle holds more than ${max} bytes uncompressed`);
  }
  const out = type === COMPRESSED ? decodeBlock(payload, room) : payload;
  if (maskedCrc32c(out) !== data.readUInt32LE(0)) {
    throw malformed('snappy frame has a chunk whose checksum does not match');
  }
  return out;
}

/** framing_format.txt section 3: the CRC rotated right by 15 bits plus a constant, mod 2^32. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c.calculate(data) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

const malformed = (message: string, cause?: unknown) =>
  new GateError('EVIDENCE_MALFORMED', message, { cause });

const tooLarge = (declared: number, max: number) =>
  new GateError(
    'SOURCE_TOO_LARGE',
    `bundle is ${declared} bytes uncompressed, over the cap of ${max}`,
  );

function lowerFirst(err: unknown): string {
  const m = (err instanceof Error ? err.message : String(err)).replace(/^snappy: /, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}
