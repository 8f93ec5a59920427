import type { GateErrorCode } from '../errors.js';
import type { ArtifactDigest, ImageRef } from '../subject.js';

/**
 * A candidate piece of evidence, as found: never trusted, never decided on here. The verify
 * stage turns it into a verified attestation or a rejection with a code.
 */
export interface Evidence {
  /** stable id: sha256 hex of `bytes` */
  id: string;
  /** where it was found, e.g. "file:/path/x.sigstore.json", "rekor:https://log#<uuid>", "store:https://api/...#3" */
  source: string;
  /**
   * a Sigstore bundle (JSON), a bare DSSE envelope (JSON) that must be checked with a configured
   * key, or a cosign image signature: a message-signature bundle over `payload`, cosign's
   * simple-signing document naming the image digest it signs (oci-cosign.ts)
   */
  kind: 'bundle' | 'dsse-envelope' | 'image-signature';
  bytes: Buffer;
  /** image-signature: the signed payload, exactly as stored */
  payload?: Buffer;
  /**
   * Found for a platform manifest of the image index asked about: it is checked against that
   * manifest's digest and counts for the index (the digest decided on).
   */
  via?: PlatformManifest;
}

/** A platform manifest of an image index, as the index lists it (its bytes checked by digest). */
export interface PlatformManifest {
  /** the index: the subject asked about */
  index: ArtifactDigest;
  manifest: ArtifactDigest;
  /** `os/architecture[/variant]` from the index entry */
  platform?: string;
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
  /** where a source looked and what each place held (the registry source: one per layout) */
  searched?: SearchReport[];
}

/** What one layout of one repository held for a subject: the report of where the gate looked. */
export interface SearchReport {
  /** e.g. `oci:ghcr.io/acme/app` */
  where: string;
  /** e.g. `referrers-api`, `referrers-tag`, `cosign-att`, `cosign-sig` */
  layout: string;
  /** the subject looked for there (a platform manifest's digest for an index's platforms) */
  subject: string;
  /** listed: the layout exists; absent: not there (no referrers API, no tag); failed: could not look */
  outcome: 'listed' | 'absent' | 'failed';
  /** entries listed, candidate pieces of evidence taken, entries rejected */
  referrers: number;
  bundles: number;
  rejected: number;
}

export interface CollectRequest {
  subject: ArtifactDigest;
  /** the image the subject was named as: a registry source searches its repository too */
  image?: ImageRef;
  signal?: AbortSignal;
}

/** Finds evidence about one subject digest. Never throws for a per-item problem: it reports it. */
export interface Source {
  /** e.g. "files:./attestations", "rekor:https://rekor.example" */
  readonly name: string;
  collect(req: CollectRequest): Promise<CollectResult>;
}

export const emptyResult = (): CollectResult => ({ evidence: [], rejected: [], failures: [] });
