import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { GateError, toGateError, type GateErrorCode } from '../errors.js';
import { MAX_DOCUMENT_BYTES, isPlainObject, parseJSON, sha256Hex } from '../util/input.js';
import type { CollectRejection, CollectResult, Evidence, Source, SourceFailure } from './types.js';

export interface FileSourceOptions {
  /** bundle files, JSON Lines files, bare DSSE envelopes, or directories holding them */
  paths: string[];
  /** most files read over all paths; more is a SOURCE_LIMIT_EXCEEDED failure */
  maxFiles?: number;
  /** per file, JSON Lines files included */
  maxBytes?: number;
  /** directory levels searched below each path */
  maxDepth?: number;
}

interface Limits {
  maxFiles: number;
  maxBytes: number;
  maxDepth: number;
}

/** Names looked at inside a directory; a file named explicitly is read whatever its name. */
const EVIDENCE_NAME = /\.(sigstore\.json|sigstore|json|jsonl)$/;

/**
 * Evidence from local files. It does not filter by subject: a statement's subjects mean nothing
 * until its signature is verified, so the verifier matches them and reports the misses.
 */
export function createFileSource(opts: FileSourceOptions): Source {
  const limits: Limits = {
    maxFiles: opts.maxFiles ?? 1000,
    maxBytes: opts.maxBytes ?? MAX_DOCUMENT_BYTES,
    maxDepth: opts.maxDepth ?? 8,
  };
  const name = `files:${opts.paths.join(',')}`;
  return {
    name,
    async collect(req): Promise<CollectResult> {
      const found: Found = { files: [], rejected: [], failures: [] };
      for (const p of opts.paths) await listPath(resolve(p), limits, found);
      if (found.files.length > limits.maxFiles) {
        const message = `found more than ${limits.maxFiles} evidence files`;
        const failure = { source: name, code: 'SOURCE_LIMIT_EXCEEDED' as const, message };
        return { evidence: [], rejected: [], failures: [failure] };
      }
      return readAll(found, limits.maxBytes, name, req.signal);
    },
  };
}

/** Reads every file found; an item seen twice (same bytes, same id) is kept once. */
async function readAll(
  found: Found,
  maxBytes: number,
  name: string,
  signal: AbortSignal | undefined,
): Promise<CollectResult> {
  const result: CollectResult = {
    evidence: [],
    rejected: found.rejected,
    failures: found.failures,
  };
  const seen = new Set<string>();
  for (const file of found.files) {
    if (signal?.aborted) {
      const message = 'collecting files was cancelled';
      result.failures.push({ source: name, code: 'SOURCE_TIMEOUT', message });
      break;
    }
    for (const item of await readItems(file, maxBytes)) {
      if (!('kind' in item)) result.rejected.push(item);
      else if (!seen.has(item.id)) result.evidence.push(item);
      seen.add(item.id);
    }
  }
  return result;
}

interface Found {
  files: string[];
  rejected: CollectRejection[];
  failures: SourceFailure[];
}

/** A top-level path that cannot be looked at is a failure, not "no evidence". */
async function listPath(path: string, limits: Limits, found: Found): Promise<void> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) await walk(path, limits, found);
    else if (st.isFile()) found.files.push(path);
    else throw new GateError('SOURCE_UNREACHABLE', `${path} is not a file or directory`);
  } catch (err) {
    const message =
      err instanceof GateError ? err.message : `cannot look at ${path}: ${errnoText(err)}`;
    found.failures.push({ source: `file:${path}`, code: 'SOURCE_UNREACHABLE', message });
  }
}

/** Breadth-first, sorted (stable order), bounded in depth and in files found. */
async function walk(root: string, limits: Limits, found: Found): Promise<void> {
  const realRoot = await realpath(root);
  const queue = [{ dir: root, depth: 0 }];
  for (let next = queue.shift(); next; next = queue.shift()) {
    const { dir, depth } = next;
    let entries;
    try {
      entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
        a.name < b.name ? -1 : 1,
      );
    } catch (err) {
      if (dir === root) throw err;
      reject(found, dir, 'INPUT_UNREADABLE', `cannot read ${dir}: ${errnoText(err)}`);
      continue;
    }
    for (const e of entries) {
      // Stop early: the count only needs to show the limit was passed.
      if (found.files.length > limits.maxFiles) return;
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < limits.maxDepth) queue.push({ dir: full, depth: depth + 1 });
        else reject(found, full, 'SOURCE_LIMIT_EXCEEDED', `${full} is over the depth limit`);
      } else if (EVIDENCE_NAME.test(e.name)) {
        if (e.isFile()) found.files.push(full);
        else if (e.isSymbolicLink()) await followLink(full, realRoot, found);
      }
    }
  }
}

/**
 * A link is followed only to a regular file inside the tree: a directory of evidence must not
 * become a way to read arbitrary files elsewhere, and linked directories could loop.
 */
async function followLink(link: string, realRoot: string, found: Found): Promise<void> {
  try {
    const target = await realpath(link);
    if (!target.startsWith(realRoot + sep) || !(await stat(target)).isFile()) {
      const message = `${link} links to ${target}, not to a file inside ${realRoot}`;
      reject(found, link, 'INPUT_UNREADABLE', message);
    } else {
      found.files.push(link);
    }
  } catch (err) {
    reject(found, link, 'INPUT_UNREADABLE', `cannot follow ${link}: ${errnoText(err)}`);
  }
}

type Item = Evidence | CollectRejection;

/** One file: a single document, or JSON Lines with one bundle or envelope per line. */
async function readItems(file: string, maxBytes: number): Promise<Item[]> {
  let bytes: Buffer;
  try {
    bytes = await readCapped(file, maxBytes);
  } catch (err) {
    const e = toGateError(err, 'INPUT_UNREADABLE');
    return [rejection(`file:${file}`, e.code, e.message)];
  }
  if (!file.endsWith('.jsonl')) return [toItem(bytes, `file:${file}`)];
  return splitLines(bytes)
    .filter(({ text }) => text.toString('utf8').trim() !== '')
    .map(({ line, text }) => toItem(Buffer.from(text), `file:${file}#L${line}`));
}

/** JSON Lines: lines end in LF, optionally CRLF; the id covers the line without its ending. */
function splitLines(bytes: Buffer): { line: number; text: Buffer }[] {
  const lines: { line: number; text: Buffer }[] = [];
  for (let start = 0, line = 1; start < bytes.length; line++) {
    const lf = bytes.indexOf(0x0a, start);
    const end = lf < 0 ? bytes.length : lf;
    const stop = end > start && bytes[end - 1] === 0x0d ? end - 1 : end;
    lines.push({ line, text: bytes.subarray(start, stop) });
    start = end + 1;
  }
  return lines;
}

/** Reads at most maxBytes + 1 bytes, so a file that grows after the size check is still capped. */
async function readCapped(file: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(file, 'r').catch((err: unknown) => {
    throw new GateError('INPUT_UNREADABLE', `cannot read ${file}: ${errnoText(err)}`, {
      cause: err,
    });
  });
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw tooLarge(file, size, maxBytes);
    const buf = Buffer.alloc(size + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooLarge(file, length, maxBytes);
    return buf.subarray(0, length);
  } finally {
    await fh.close();
  }
}

function toItem(bytes: Buffer, source: string): Item {
  const id = sha256Hex(bytes);
  let doc: unknown;
  try {
    doc = parseJSON(bytes, source);
  } catch (err) {
    const e = toGateError(err, 'INPUT_MALFORMED_JSON');
    return { id, source, code: e.code, message: e.message };
  }
  const kind = kindOf(doc);
  if (kind) return { id, source, kind, bytes };
  return {
    id,
    source,
    code: 'EVIDENCE_MALFORMED',
    message: `${source} is neither a sigstore bundle nor a dsse envelope`,
  };
}

/** Recognised by shape only; the verifier decides whether it is valid. */
function kindOf(doc: unknown): Evidence['kind'] | undefined {
  if (!isPlainObject(doc)) return undefined;
  const media = doc.mediaType;
  if (
    (typeof media === 'string' && media.startsWith('application/vnd.dev.sigstore.bundle')) ||
    isPlainObject(doc.verificationMaterial)
  ) {
    return 'bundle';
  }
  if (
    typeof doc.payload === 'string' &&
    typeof doc.payloadType === 'string' &&
    Array.isArray(doc.signatures)
  ) {
    return 'dsse-envelope';
  }
  return undefined;
}

/** A rejection with nothing read has no bytes to hash: its id is empty. */
const rejection = (source: string, code: GateErrorCode, message: string): CollectRejection => ({
  id: '',
  source,
  code,
  message,
});

function reject(found: Found, path: string, code: GateErrorCode, message: string): void {
  found.rejected.push(rejection(`file:${path}`, code, message));
}

const tooLarge = (file: string, size: number, max: number) =>
  new GateError('INPUT_TOO_LARGE', `${file} is ${size} bytes, over the limit of ${max}`);

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return code ? code.toLowerCase() : 'unknown error';
}
