import type { GateErrorCode } from '../errors.js';
import type { ArtifactDigest } from '../subject.js';

/**
 * A candidate piece of evidence, as found: never trusted, never decided on here. The verify
 * stage turns it into a verified attestation or a rejection with a code.
 */
export interface Evidence {
  /** stable id: sha256 hex of `bytes` */
  id: string;
  /** where it was found, e.g. "file:/path/x.sigstore.json", "rekor:https://log#<uuid>", "store:https://api/...#3" */
  source: string;
  /** a Sigstore bundle (JSON), or a bare DSSE envelope (JSON) that must be checked with a configured key */
  kind: 'bundle' | 'dsse-envelope';
  bytes: Buffer;
}

/** A piece of evidence a source found but could not turn into something verifiable. */
export interface CollectRejection {
  id: string;
  source: string;
  code: GateErrorCode;
  message: string;
}

/** A source that could not look: "could not look" is never "nothing found". */
export interface SourceFailure {
  source: string;
  code: GateErrorCode;
  message: string;
}

export interface CollectResult {
  evidence: Evidence[];
  rejected: CollectRejection[];
  failures: SourceFailure[];
}

export interface CollectRequest {
  subject: ArtifactDigest;
  signal?: AbortSignal;
}

/** Finds evidence about one subject digest. Never throws for a per-item problem: it reports it. */
export interface Source {
  /** e.g. "files:./attestations", "rekor:https://rekor.example" */
  readonly name: string;
  collect(req: CollectRequest): Promise<CollectResult>;
}

export const emptyResult = (): CollectResult => ({ evidence: [], rejected: [], failures: [] });
