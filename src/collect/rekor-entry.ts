import { createHash } from 'node:crypto';
import { GateError } from '../errors.js';
import { isPlainObject } from '../util/input.js';

/**
 * One Rekor v1 log entry as the API returns it (openapi.yaml LogEntry), checked for shape only.
 * The proofs are not verified here: the verifier checks them against the trusted root.
 */
export interface RekorEntry {
  /** the id the log keyed the entry by: 64 hex (leaf hash) or 80 hex (tree id + leaf hash) */
  uuid: string;
  /** base64 of the canonicalized body, exactly as given */
  body: string;
  integratedTime: number;
  /** hex SHA-256 of the log's DER public key */
  logID: string;
  logIndex: number;
  /** intoto: base64 of the statement, kept outside the signature and the proof */
  attestationData?: string;
  signedEntryTimestamp?: string;
  inclusionProof?: InclusionProof;
}

export interface InclusionProof {
  logIndex: number;
  treeSize: number;
  rootHash: string;
  hashes: string[];
  checkpoint: string;
}

export interface EntryBody {
  kind: string;
  apiVersion: string;
  spec: Record<string, unknown>;
}

export const ENTRY_ID = /^(?:[0-9a-fA-F]{16})?[0-9a-fA-F]{64}$/;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const malformed = (message: string, cause?: unknown): GateError =>
  new GateError('EVIDENCE_MALFORMED', message, cause === undefined ? undefined : { cause });

/** The leaf hash part of an entry id: what the same entry is called in both id forms. */
export const leafHashOf = (uuid: string): string => uuid.slice(-64).toLowerCase();

/** Strict base64 (the bundle parser refuses anything else); throws EVIDENCE_MALFORMED. */
export function base64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !BASE64.test(value)) {
    throw malformed(`${what} is not base64`);
  }
  return Buffer.from(value, 'base64');
}

export function parseEntry(uuid: string, raw: unknown): RekorEntry {
  if (!isPlainObject(raw)) throw malformed(`entry ${uuid} is not a json object`);
  const { body, integratedTime, logID, logIndex } = raw;
  const leaf = createHash('sha256')
    .update(Buffer.from([0]))
    .update(base64(body, `entry ${uuid} body`))
    .digest('hex');
  // The id is the RFC 6962 leaf hash of the body: a body that does not hash to it is not the
  // entry that was asked for.
  if (leaf !== leafHashOf(uuid)) throw malformed(`entry ${uuid} body does not hash to its id`);
  if (!isCount(integratedTime) || !isCount(logIndex)) {
    throw malformed(`entry ${uuid} needs integer integratedTime and logIndex`);
  }
  if (typeof logID !== 'string' || !HEX64.test(logID)) {
    throw malformed(`entry ${uuid} logID is not 64 hex digits`);
  }
  const entry: RekorEntry = { uuid, body: body as string, integratedTime, logID, logIndex };
  const data = isPlainObject(raw.attestation) ? raw.attestation.data : undefined;
  if (data !== undefined && data !== null && data !== '') {
    base64(data, `entry ${uuid} attestation data`);
    entry.attestationData = data as string;
  }
  const verification = isPlainObject(raw.verification) ? raw.verification : {};
  if (verification.signedEntryTimestamp !== undefined) {
    base64(verification.signedEntryTimestamp, `entry ${uuid} signed entry timestamp`);
    entry.signedEntryTimestamp = verification.signedEntryTimestamp as string;
  }
  if (verification.inclusionProof !== undefined) {
    entry.inclusionProof = parseProof(uuid, verification.inclusionProof);
  }
  return entry;
}

function parseProof(uuid: string, raw: unknown): InclusionProof {
  const p = isPlainObject(raw) ? raw : {};
  const hashes = Array.isArray(p.hashes) ? p.hashes : undefined;
  const ok =
    isCount(p.logIndex) &&
    isCount(p.treeSize) &&
    typeof p.rootHash === 'string' &&
    HEX64.test(p.rootHash) &&
    hashes?.every((h) => typeof h === 'string' && HEX64.test(h)) &&
    typeof p.checkpoint === 'string';
  if (!ok) throw malformed(`entry ${uuid} has a malformed inclusion proof`);
  return {
    logIndex: p.logIndex as number,
    treeSize: p.treeSize as number,
    rootHash: p.rootHash as string,
    hashes: hashes as string[],
    checkpoint: p.checkpoint as string,
  };
}

export function decodeBody(entry: RekorEntry): EntryBody {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(entry.body, 'base64').toString('utf8'));
  } catch (err) {
    throw malformed(`entry ${entry.uuid} body is not json`, err);
  }
  if (
    !isPlainObject(json) ||
    typeof json.kind !== 'string' ||
    typeof json.apiVersion !== 'string' ||
    !isPlainObject(json.spec)
  ) {
    throw malformed(`entry ${entry.uuid} body needs kind, apiVersion and spec`);
  }
  return { kind: json.kind, apiVersion: json.apiVersion, spec: json.spec };
}

/** A `{algorithm: 'sha256', value: hex}` digest field of an entry body, lowercase hex. */
export function sha256Field(value: unknown, what: string): string {
  const v = isPlainObject(value) ? value : {};
  if (v.algorithm !== 'sha256' || typeof v.value !== 'string' || !HEX64.test(v.value)) {
    throw malformed(`${what} is not a sha256 digest`);
  }
  return v.value.toLowerCase();
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
