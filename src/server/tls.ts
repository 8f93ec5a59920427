import { createHash } from 'node:crypto';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { GateError, toGateError } from '../errors.js';
import { readBoundedFile } from '../util/input.js';

/**
 * TLS for `gate serve`: the API server calls admission webhooks over https only, and bearer
 * tokens must not cross the network in clear. cert-manager (or any rotation) replaces the files
 * in place; the server picks the new pair up without a restart.
 */

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** A certificate chain and key are small; anything bigger is the wrong file. */
const MAX_PEM_BYTES = 256 * 1024;

/** Reads and checks the pair (the key must match the certificate); CONFIG_INVALID otherwise. */
export function readTlsPair(files: TlsFiles): TlsPair {
  const cert = readBoundedFile(files.cert, MAX_PEM_BYTES, 'tls certificate');
  const key = readBoundedFile(files.key, MAX_PEM_BYTES, 'tls key');
  checkPair({ cert, key }, files);
  return { cert, key };
}

function checkPair(pair: TlsPair, files: TlsFiles): void {
  try {
    createSecureContext(pair);
  } catch (err) {
    const why = toGateError(err).message;
    throw new GateError(
      'CONFIG_INVALID',
      `tls certificate ${files.cert} and key ${files.key} do not make a usable pair: ${why}`,
      { cause: err },
    );
  }
}

const fingerprint = (p: TlsPair) =>
  createHash('sha256').update(p.cert).update('\0').update(p.key).digest('hex');

export interface TlsReloader {
  /** reads the files now; true when a new pair was installed */
  check(): Promise<boolean>;
  stop(): void;
}

/**
 * Polls the files (contents, not mtimes: a Kubernetes secret volume swaps a symlink, which file
 * watchers miss) and installs a changed pair on the running server; connections already open
 * keep theirs. A half-written rotation (a new certificate with the old key) is not installed:
 * the old pair keeps serving, the error is reported, and the next poll tries again.
 */
export function reloadTlsOnChange(
  app: FastifyInstance,
  files: TlsFiles,
  initial: TlsPair,
  opts: { intervalMs?: number; onError?: (err: GateError) => void } = {},
): TlsReloader {
  const server = app.server as unknown as TlsServer;
  let current = fingerprint(initial);
  let running: Promise<boolean> | undefined;
  const once = async (): Promise<boolean> => {
    let pair: TlsPair;
    try {
      pair = readTlsPair(files);
    } catch (err) {
      opts.onError?.(toGateError(err, 'CONFIG_INVALID'));
      return false;
    }
    const next = fingerprint(pair);
    if (next === current) return false;
    server.setSecureContext(pair);
    current = next;
    app.log.info({ cert: files.cert }, 'tls certificate reloaded');
    return true;
  };
  const check = () => (running ??= once().finally(() => (running = undefined)));
  const timer = setInterval(() => void check(), opts.intervalMs ?? 10_000);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
