import { isIP } from 'node:net';
import { GateError } from '../errors.js';

/**
 * Whether `gate serve` may start as asked. Beyond loopback, POST /v1/decisions takes a token by
 * default (a caller without one must not be able to spend the gate's sources and fill its
 * ledger), and a token needs TLS, or it crosses the network in clear.
 */

/** 127.0.0.0/8, ::1, the IPv4-mapped forms of 127/8, and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export interface Exposure {
  host: string;
  tls: boolean;
  /** GATE_TOKEN_DECISIONS is set */
  decisionsToken: boolean;
  /** server.openDecisions: true in the configuration */
  openDecisions: boolean;
}

/** Throws SERVE_UNPROTECTED, one line saying what to set, when the server must not start. */
export function checkExposure(e: Exposure): void {
  if (isLoopback(e.host)) return;
  const where = `gate serve would listen on ${e.host}, beyond loopback`;
  if (!e.decisionsToken && !e.openDecisions) {
    throw new GateError(
      'SERVE_UNPROTECTED',
      `${where}, with POST /v1/decisions open to anyone: set GATE_TOKEN_DECISIONS, or server.openDecisions: true in the configuration to serve it without a token`,
    );
  }
  if (e.decisionsToken && !e.tls) {
    throw new GateError(
      'SERVE_UNPROTECTED',
      `${where}, over plain http: GATE_TOKEN_DECISIONS would cross the network in clear; start it with --tls-cert and --tls-key`,
    );
  }
}
