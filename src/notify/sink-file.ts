import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { GateError } from '../errors.js';
import { endsTorn } from '../util/append.js';

/**
 * The sink outbox's file operations. Every change is made under a lock file (created with O_EXCL,
 * holding the pid) for the few microseconds of a write, so a second process on the same outbox (a
 * `gate check` beside a `gate serve`) never appends to a file being compacted away. A lock left by
 * a process that died is taken over.
 */
export function withFileLock<T>(file: string, fn: () => T): { done: true; value: T } | undefined {
  const lock = `${file}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unavailable(file, err);
      if (!stale(lock)) return undefined;
      rmQuiet(lock);
      continue;
    }
    try {
      return { done: true, value: fn() };
    } finally {
      rmQuiet(lock);
    }
  }
  return undefined;
}

/** A lock whose process is gone, or held far longer than any write takes. */
function stale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    if (Date.now() - statSync(lock).mtimeMs > 30_000) return true;
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written right now
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ESRCH' || code === 'ENOENT';
  }
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw unavailable(file, err);
  }
}

/**
 * Appends lines now (the write is in the kernel when this returns) and fsyncs in the thread pool:
 * the decision path never waits on a disk. `synced` resolves once the lines are durable.
 */
export function appendLines(
  file: string,
  lines: string[],
): { start: number; size: number; synced: Promise<void> } {
  mkdirSync(path.dirname(file), { recursive: true });
  let fd: number;
  try {
    fd = openSync(file, 'a+');
  } catch (err) {
    throw unavailable(file, err);
  }
  let size: number;
  let start: number;
  try {
    const before = fstatSync(fd).size;
    // a torn last line (a crash mid-write) must not swallow the next record
    const lead = endsTorn(fd, before) ? '\n' : '';
    writeSync(fd, lead + lines.join(''));
    start = before + lead.length;
    size = fstatSync(fd).size;
  } catch (err) {
    closeSync(fd);
    throw unavailable(file, err);
  }
  const synced = new Promise<void>((resolve, reject) =>
    fsync(fd, (err) => {
      closeSync(fd);
      if (err) reject(unavailable(file, err));
      else resolve();
    }),
  );
  return { start, size, synced };
}

/** Replaces the file with `lines` atomically (temp file, fsync, rename, fsync of the folder). */
export function replaceFile(file: string, lines: string[]): number {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, lines.join(''));
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dir = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return statSync(file).size;
  } catch (err) {
    rmQuiet(tmp);
    throw unavailable(file, err);
  }
}

function unavailable(file: string, err: unknown): GateError {
  return new GateError('NOTIFY_UNAVAILABLE', `cannot write the sink outbox ${file}`, {
    cause: err,
  });
}

/**
 * Calls `fn` with each complete line from byte `start` on, read a few MiB at a time (a file left
 * to grow while a sink was down may be larger than a string can be), with the line's own start.
 * `fn` returning false stops there. Returns where reading stopped: the start of the line it
 * stopped at, or of a torn last line, or the end of the file.
 */
export function forEachLine(
  file: string,
  start: number,
  fn: (line: string, at: number) => boolean | void,
): number {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return start;
    throw unavailable(file, err);
  }
  try {
    const chunk = Buffer.alloc(CHUNK);
    let carry = Buffer.alloc(0);
    let at = start;
    let pos = start;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, pos);
      if (n === 0) return at;
      pos += n;
      const buf = carry.length
        ? Buffer.concat([carry, chunk.subarray(0, n)])
        : chunk.subarray(0, n);
      let from = 0;
      for (let nl = buf.indexOf(0x0a, from); nl >= 0; nl = buf.indexOf(0x0a, from)) {
        if (fn(buf.toString('utf8', from, nl), at) === false) return at;
        at += nl + 1 - from;
        from = nl + 1;
      }
      carry = Buffer.from(buf.subarray(from));
    }
  } finally {
    closeSync(fd);
  }
}

const CHUNK = 4 * 1024 * 1024;
