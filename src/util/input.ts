import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { GateError } from '../errors.js';

/** Largest bundle, envelope or trusted root the gate reads: real ones are a few KiB. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/**
 * Reads a file of untrusted input with a size cap. The size is checked before reading so a
 * huge file (or /dev/zero) is refused without filling memory.
 */
export function readBoundedFile(file: string, limit = MAX_DOCUMENT_BYTES, what = 'file'): Buffer {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new GateError('INPUT_UNREADABLE', `${what} ${file} is a directory`);
    size = st.size;
  } catch (err) {
    if (err instanceof GateError) throw err;
    throw new GateError('INPUT_UNREADABLE', `cannot read ${what} ${file}: ${errnoText(err)}`, {
      cause: err,
    });
  }
  if (size > limit) {
    throw new GateError(
      'INPUT_TOO_LARGE',
      `${what} ${file} is ${size} bytes, over the limit of ${limit}`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new GateError('INPUT_UNREADABLE', `cannot read ${what} ${file}: ${errnoText(err)}`, {
      cause: err,
    });
  }
  // A special file can report size 0 and still produce data.
  if (bytes.length > limit) {
    throw new GateError('INPUT_TOO_LARGE', `${what} ${file} is over the limit of ${limit} bytes`);
  }
  return bytes;
}

/** Parses untrusted JSON; anything malformed becomes a coded error naming what it was. */
export function parseJSON(
  bytes: Buffer | string,
  what: string,
  limit = MAX_DOCUMENT_BYTES,
): unknown {
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (length > limit) {
    throw new GateError(
      'INPUT_TOO_LARGE',
      `${what} is ${length} bytes, over the limit of ${limit}`,
    );
  }
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 quotes the text around the error, line breaks included: one line (test/fuzz, issue 12)
    const detail = err instanceof Error ? clip(err.message.toLowerCase(), 200) : 'unparseable';
    throw new GateError('INPUT_MALFORMED_JSON', `${what} is not valid json: ${detail}`, {
      cause: err,
    });
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code ? code.toLowerCase() : 'unknown error';
  }
}

/** Whether the JSON text nests objects and arrays more than `max` levels. Strings are skipped. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** Levels of nesting allowed in the caller's context (the context object itself being level 1). */
export const MAX_CONTEXT_DEPTH = 32;

/**
 * Whether a parsed value nests objects and arrays more than `max` levels, counted without
 * recursion: a deeply nested value would overflow the stack of every recursive walk after it
 * (canonical JSON, schema checks).
 */
export function valueDepthExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** One printable line of at most `max` characters, for echoing untrusted input in messages. */
export function clip(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const line = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
