import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Appends JSON Lines records and fsyncs before returning: once this returns, the records survive
 * a crash. After a crash mid-write the file may end in a torn line; the next record starts on a
 * fresh line, or it would be glued to the torn one and lost with it when the file is read.
 */
export function appendLinesDurably(file: string, records: unknown[]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'a+');
  try {
    const lead = endsTorn(fd) ? '\n' : '';
    writeSync(fd, lead + records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The file open at `fd` (of `size` bytes, default its size now) ends in a line not yet ended. */
export function endsTorn(fd: number, size = fstatSync(fd).size): boolean {
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] !== 0x0a;
}
