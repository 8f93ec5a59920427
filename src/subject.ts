import { GateError } from './errors.js';
import { clip } from './util/input.js';

/**
 * What every stage calls an artifact: a digest the caller asks about (the subject of a decision,
 * an in-toto subject, what a source is asked to look for). It sits here, not in a stage, so no
 * stage imports another for a type.
 */
export interface ArtifactDigest {
  algorithm: 'sha256' | 'sha512';
  /** lowercase hex */
  hex: string;
}

/** A subject of a decision: a digest, with the name and version of a release set's component. */
export interface Subject {
  digest: ArtifactDigest;
  name?: string;
  version?: string;
  /** the container image it was asked about as: its attestations are searched in its repository */
  image?: ImageRef;
}

/** An image as the caller named it: recorded beside the digest that was decided. */
export interface ImageRef {
  /** as written, e.g. `ghcr.io/acme/app:v1.2` */
  reference: string;
  /** `host/name` after Docker's normalisation, e.g. `index.docker.io/library/nginx` */
  repository: string;
  /** the tag resolved to the digest, when the reference had one */
  tag?: string;
}

export const HEX_LENGTH: Record<ArtifactDigest['algorithm'], number> = { sha256: 64, sha512: 128 };

/** Parses "sha256:<64 hex>" or "sha512:<128 hex>"; the hex is normalised to lowercase. */
export function parseDigest(s: string): ArtifactDigest {
  const m = typeof s === 'string' ? /^(sha256|sha512):([0-9a-fA-F]+)$/.exec(s) : null;
  const algorithm = m?.[1] as ArtifactDigest['algorithm'] | undefined;
  const hex = m?.[2];
  if (algorithm === undefined || hex === undefined || hex.length !== HEX_LENGTH[algorithm]) {
    throw new GateError(
      'USAGE_ERROR',
      `invalid digest "${clip(String(s), 80)}": expected sha256:<64 hex> or sha512:<128 hex>`,
    );
  }
  return { algorithm, hex: hex.toLowerCase() };
}

/** `sha256:HEX`, or `NAME[@VERSION]=sha256:HEX` for a component of a release set. */
export function parseSubject(arg: string): Subject {
  const eq = arg.lastIndexOf('=');
  if (eq === -1) return { digest: parseDigest(arg) };
  const label = arg.slice(0, eq);
  const at = label.lastIndexOf('@');
  const name = at > 0 ? label.slice(0, at) : label;
  const version = at > 0 ? label.slice(at + 1) : undefined;
  if (!name) throw new GateError('USAGE_ERROR', `subject ${JSON.stringify(arg)} has an empty name`);
  return { digest: parseDigest(arg.slice(eq + 1)), name, ...(version ? { version } : {}) };
}

/** "sha256:<hex>": how the ledger and messages name a digest. */
export function digestKey(d: ArtifactDigest): string {
  return `${d.algorithm}:${d.hex}`;
}
