import { open, readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
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
  /** what was read before, kept across requests (createFileCache); none: every file is read */
  cache?: FileCache;
}

/**
 * Files read before, by path, with the identity of the version read: device, inode, size and the
 * modification and change times in nanoseconds. A file whose stat still says the same is not
 * read again (a server deciding many times on one evidence folder reads each file once). As git
 * does with its index, a file changed within the last two seconds is never remembered, since
 * two writes within one clock tick can leave the same times and size; and the stat is taken
 * again after reading, so a file changed while it was read is not remembered either.
 */
export interface FileCache {
  get(path: string, version: string): Item[] | undefined;
  set(path: string, version: string, items: Item[]): void;
  /** files changed more recently than this many ms ago are read every time */
  readonly racyMs: number;
}

/**
 * A bounded file cache (least recently read first out): at most `maxFiles` files and `maxBytes`
 * of their contents (a folder of large files is read again rather than kept in memory).
 */
export function createFileCache(
  o: { maxFiles?: number; maxBytes?: number; racyMs?: number } = {},
): FileCache {
  const maxFiles = o.maxFiles ?? 10_000;
  const maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
  const entries = new Map<string, { version: string; items: Item[]; bytes: number }>();
  let total = 0;
  const drop = (path: string) => {
    const e = entries.get(path);
    if (!e) return;
    total -= e.bytes;
    entries.delete(path);
  };
  return {
    racyMs: o.racyMs ?? RACY_MS,
    get(path, version) {
      const e = entries.get(path);
      if (!e || e.version !== version) return undefined;
      entries.delete(path);
      entries.set(path, e);
      return e.items;
    },
    set(path, version, items) {
      drop(path);
      const bytes = items.reduce((n, i) => n + ('bytes' in i ? i.bytes.length : 0), 0);
      if (bytes > maxBytes) return;
      entries.set(path, { version, items, bytes });
      total += bytes;
      while (entries.size > maxFiles || total > maxBytes) drop(entries.keys().next().value!);
    },
  };
}

/** Files changed more recently than this are read every time (see FileCache). */
const RACY_MS = 2000;

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
  const scan = async (signal?: AbortSignal): Promise<CollectResult> => {
    const found: Found = { files: [], rejected: [], failures: [] };
    for (const p of opts.paths) await listPath(resolve(p), limits, found);
    if (found.files.length > limits.maxFiles) {
      const message = `found more than ${limits.maxFiles} evidence files`;
      const failure = { source: name, code: 'SOURCE_LIMIT_EXCEEDED' as const, message };
      return { evidence: [], rejected: [], failures: [failure] };
    }
    return readAll(found, limits.maxBytes, name, signal, opts.cache);
  };
  if (!opts.cache) return { name, collect: (req) => scan(req.signal) };
  const shared = sharedScans(scan);
  return {
    name,
    async collect(req): Promise<CollectResult> {
      const r = await untilAborted(shared(), req.signal, name);
      // each request gets lists of its own (the scan is shared)
      return { evidence: [...r.evidence], rejected: [...r.rejected], failures: [...r.failures] };
    },
  };
}

/**
 * Concurrent decisions share one look at the folder, but never one that began before they were
 * asked: a request arriving while a scan is under way waits for the next one, which starts when
 * that scan ends and serves every request that arrived meanwhile. So a file written before a
 * request is always seen by it, and a busy server lists and stats the folder once per batch of
 * requests rather than once per request.
 */
export function sharedScans<T>(scan: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const start = () => {
    const p = scan();
    current = p;
    const clear = () => {
      if (current === p) current = undefined;
    };
    p.then(clear, clear);
    return p;
  };
  return () => {
    if (!current) return start();
    const settle = () => {
      queued = undefined;
      return start();
    };
    return (queued ??= current.then(settle, settle));
  };
}

/** The scan's result, or SOURCE_TIMEOUT once this request's own deadline passes. */
function untilAborted(
  p: Promise<CollectResult>,
  signal: AbortSignal | undefined,
  name: string,
): Promise<CollectResult> {
  if (!signal) return p;
  const message = 'collecting files was cancelled';
  const timedOut = (): CollectResult => ({
    evidence: [],
    rejected: [],
    failures: [{ source: name, code: 'SOURCE_TIMEOUT', message }],
  });
  if (signal.aborted) return Promise.resolve(timedOut());
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(timedOut());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Files read at once. */
const PARALLEL_READS = 16;

/**
 * Reads every file found, several at once, keeping the order found; an item seen twice (same
 * bytes, same id) is kept once.
 */
async function readAll(
  found: Found,
  maxBytes: number,
  name: string,
  signal: AbortSignal | undefined,
  cache: FileCache | undefined,
): Promise<CollectResult> {
  const result: CollectResult = {
    evidence: [],
    rejected: found.rejected,
    failures: found.failures,
  };
  const read: Array<Item[] | undefined> = new Array(found.files.length);
  let next = 0;
  let cancelled = false;
  const worker = async () => {
    while (next < found.files.length) {
      if (signal?.aborted) {
        cancelled = true;
        return;
      }
      const i = next++;
      read[i] = await readItems(found.files[i]!, maxBytes, cache);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, found.files.length) }, worker));
  const seen = new Set<string>();
  for (const items of read) {
    if (!items) break;
    for (const item of items) {
      if (!('kind' in item)) result.rejected.push(item);
      else if (!seen.has(item.id)) result.evidence.push(item);
      seen.add(item.id);
    }
  }
  if (cancelled) {
    const message = 'collecting files was cancelled';
    result.failures.push({ source: name, code: 'SOURCE_TIMEOUT', message });
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
  // resolved only when a link is met: most folders have none, and a server walks them often
  let realRoot: Promise<string> | undefined;
  const rootReal = () => (realRoot ??= realpath(root));
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
        else if (e.isSymbolicLink()) await followLink(full, rootReal, found);
      }
    }
  }
}

/**
 * A link is followed only to a regular file inside the tree: a directory of evidence must not
 * become a way to read arbitrary files elsewhere, and linked directories could loop.
 */
async function followLink(
  link: string,
  rootReal: () => Promise<string>,
  found: Found,
): Promise<void> {
  try {
    const realRoot = await rootReal();
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
async function readItems(file: string, maxBytes: number, cache?: FileCache): Promise<Item[]> {
  let version: string | undefined;
  if (cache) {
    version = await versionOf(file, cache.racyMs);
    const known = version === undefined ? undefined : cache.get(file, version);
    if (known) return known;
  }
  let bytes: Buffer;
  try {
    bytes = await readCapped(file, maxBytes);
  } catch (err) {
    const e = toGateError(err, 'INPUT_UNREADABLE');
    return [rejection(`file:${file}`, e.code, e.message)];
  }
  const items = !file.endsWith('.jsonl')
    ? [toItem(bytes, `file:${file}`)]
    : splitLines(bytes)
        .filter(({ text }) => text.toString('utf8').trim() !== '')
        .map(({ line, text }) => toItem(Buffer.from(text), `file:${file}#L${line}`));
  // remembered only when the file did not change while it was read (see FileCache)
  if (cache && version !== undefined && version === (await versionOf(file, cache.racyMs))) {
    cache.set(file, version, items);
  }
  return items;
}

/** The identity of the file's current version, or undefined when it is too fresh to remember. */
async function versionOf(file: string, racyMs: number): Promise<string | undefined> {
  let st: Stats;
  try {
    st = await stat(file);
  } catch {
    return undefined; // read below, which reports why it cannot be
  }
  // times in ms with a fraction (microseconds): finer than the kernel's clock tick
  const newest = Math.max(st.mtimeMs, st.ctimeMs);
  if (Date.now() - newest < racyMs) return undefined;
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
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
