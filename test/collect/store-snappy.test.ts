import { randomBytes } from 'node:crypto';
import { compress } from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { decodeBundleBody, maskedCrc32c, uncompressedLength } from '../../src/collect/snappy.js';

const TEXT = Buffer.from('hello hello hello hello');
// Worked by hand from format_description.txt: varint 23, a 6-byte literal "hello " (tag 5<<2),
// then a copy of 17 bytes at offset 6 with a 2-byte offset (tag (16<<2)|2 = 0x42, offset 06 00).
const BLOCK = Buffer.from('17' + '14' + '68656c6c6f20' + '42' + '0600', 'hex');
// framing_format.txt: the stream identifier, then one compressed chunk (type 0, 15 bytes) whose
// first 4 bytes are the masked CRC-32C of TEXT, worked out with a bitwise CRC outside this code.
const STREAM_ID = 'ff060000734e61507059';
const FRAMED = Buffer.from(`${STREAM_ID}000f00008a1fb154${BLOCK.toString('hex')}`, 'hex');
const FRAMED_RAW = Buffer.from(`${STREAM_ID}011b00008a1fb154${TEXT.toString('hex')}`, 'hex');
const MiB = 1024 * 1024;

/** CRC-32C bit by bit (Castagnoli, reflected 0x82f63b78): independent of the decoder's library. */
function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
const masked = (data: Uint8Array) => {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
};
/** A framed stream of snappyjs-compressed chunks of at most 64 KiB, as framing_format.txt lays out. */
function frame(data: Buffer): Buffer {
  const out = [Buffer.from(STREAM_ID, 'hex')];
  for (let at = 0; at < data.length; at += 65_536) {
    const part = data.subarray(at, at + 65_536);
    const block = Buffer.from(compress(new Uint8Array(part)));
    const head = Buffer.alloc(8);
    head.writeUInt8(0x00, 0);
    head.writeUIntLE(block.length + 4, 1, 3);
    head.writeUInt32LE(masked(part), 4);
    out.push(head, block);
  }
  return Buffer.concat(out);
}

describe('decoding a bundle body', () => {
  it('reads the hand-worked block and framed vectors', () => {
    expect(decodeBundleBody(BLOCK, 1024)).toEqual(TEXT);
    expect(decodeBundleBody(FRAMED, 1024)).toEqual(TEXT);
    expect(decodeBundleBody(FRAMED_RAW, 1024)).toEqual(TEXT);
  });

  it('masks the CRC-32C as framing_format.txt does (check value of "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(maskedCrc32c(TEXT)).toBe(0x54b11f8a);
    expect(maskedCrc32c(TEXT)).toBe(masked(TEXT));
  });

  it('decodes what an independent encoder (snappyjs) wrote, block and framed, over 64 KiB', () => {
    const data = Buffer.concat([randomBytes(70_000), Buffer.alloc(90_000, 'a'), randomBytes(10)]);
    const block = Buffer.from(compress(new Uint8Array(data)));
    expect(decodeBundleBody(block, MiB)).toEqual(data);
    expect(decodeBundleBody(frame(data), MiB)).toEqual(data);
  });

  it('passes plain json through, leading whitespace allowed', () => {
    const json = Buffer.from(' \n{"mediaType":"x"}');
    expect(decodeBundleBody(json, 1024)).toBe(json);
  });

  it('skips padding and skippable chunks and a repeated stream identifier', () => {
    const pad = Buffer.from('fe030000000000' + STREAM_ID + '800100' + '00' + '07', 'hex');
    const stream = Buffer.concat([FRAMED, pad, FRAMED.subarray(10)]);
    expect(decodeBundleBody(stream, 1024)).toEqual(Buffer.concat([TEXT, TEXT]));
  });
});

describe('refusing a bundle body', () => {
  const code = (body: Buffer, max = 1024) => {
    try {
      decodeBundleBody(body, max);
    } catch (err) {
      return [(err as { code?: string }).code, (err as Error).message];
    }
    return ['decoded'];
  };

  it('refuses a block that declares more than the cap before decoding it', () => {
    // 5 bytes declare 4 GiB - 1: refused from the header, nothing of that size allocated.
    const bomb = Buffer.from('ffffffff0f' + '00' + '41', 'hex');
    expect(uncompressedLength(bomb)).toBe(0xffffffff);
    expect(code(bomb, 16 * MiB)).toEqual([
      'SOURCE_TOO_LARGE',
      `bundle is 4294967295 bytes uncompressed, over the cap of ${16 * MiB}`,
    ]);
    expect(code(Buffer.from(compress(new Uint8Array(Buffer.alloc(2048, 'x')))))[0]).toBe(
      'SOURCE_TOO_LARGE',
    );
  });

  it('refuses framed chunks that add up to more than the cap', () => {
    const data = Buffer.alloc(200_000, 'z');
    expect(code(frame(data), 150_000)).toEqual([
      'SOURCE_TOO_LARGE',
      'bundle holds more than 150000 bytes uncompressed',
    ]);
    expect(code(Buffer.from('{"a":1}'), 3)[0]).toBe('SOURCE_TOO_LARGE');
  });

  it('refuses truncated and corrupt streams with EVIDENCE_MALFORMED', () => {
    const flip = (b: Buffer, at: number) => {
      const copy = Buffer.from(b);
      copy.writeUInt8(copy.readUInt8(at) ^ 0x01, at);
      return copy;
    };
    const flipped = flip(FRAMED, FRAMED.length - 3);
    const badCrc = flip(FRAMED, 15);
    const cases = [
      BLOCK.subarray(0, BLOCK.length - 3), // ends inside the copy
      BLOCK.subarray(0, 6), // ends inside the literal
      Buffer.from('1714' + '68656c6c6f20', 'hex'), // declares 23, holds 6
      Buffer.from('ffffffffff01', 'hex'), // a varint over 5 bytes
      Buffer.alloc(0),
      FRAMED.subarray(0, FRAMED.length - 2),
      FRAMED.subarray(0, 12),
      badCrc,
      flipped,
      Buffer.from(`${STREAM_ID}020100` + '00', 'hex'), // reserved unskippable chunk
      Buffer.from(`${STREAM_ID}000200` + '0000', 'hex'), // a chunk without its checksum
      Buffer.from('ff060000734e61507058', 'hex'), // not quite the stream identifier
    ];
    for (const body of cases)
      expect(code(body)[0], body.toString('hex')).toBe('EVIDENCE_MALFORMED');
  });
});
