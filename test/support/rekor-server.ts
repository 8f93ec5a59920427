import {
  createHash,
  generateKeyPairSync,
  randomInt,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { json as canonicalJSON } from '@sigstore/core';
import { canonicalDSSEEntry, preAuthEncoding } from './local-rekor.js';
import type { TransparencyLogInstanceJSON } from './sigstore-services.js';

/**
 * A Rekor v1 compatible log on 127.0.0.1 for tests: a real RFC 6962 Merkle tree (inclusion proofs
 * for any size), SETs and signed checkpoints made as sigstore/rekor v1 makes them, the search
 * index, and fault knobs. startReplayServer serves recorded responses through the same routes.
 */

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const LEAF = Buffer.from([0x00]);
const NODE = Buffer.from([0x01]);

/** RFC 6962 section 2.1: MTH over leaves, PATH(m, D[n]) listed from the leaf up. */
export class MerkleTree {
  private readonly leaves: Buffer[] = [];

  get size(): number {
    return this.leaves.length;
  }

  append(body: Buffer): number {
    this.leaves.push(sha256(LEAF, body));
    return this.leaves.length - 1;
  }

  root(lo = 0, hi = this.size): Buffer {
    if (hi - lo === 0) return sha256();
    if (hi - lo === 1) return this.leaves[lo]!;
    const k = splitPoint(hi - lo);
    return sha256(NODE, this.root(lo, lo + k), this.root(lo + k, hi));
  }

  proof(m: number, lo = 0, hi = this.size): Buffer[] {
    if (hi - lo <= 1) return [];
    const k = splitPoint(hi - lo);
    return m < lo + k
      ? [...this.proof(m, lo, lo + k), this.root(lo + k, hi)]
      : [...this.proof(m, lo + k, hi), this.root(lo, lo + k)];
  }
}

/** The largest power of two smaller than n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export interface RekorFaults {
  /** answer the next `count` requests with `status` (default 503), with Retry-After if given */
  failNext?: { count: number; status?: number; retryAfter?: string };
  /** wait this long before answering */
  delayMs?: number;
  /** answer with this many bytes (sent chunked, no content-length) */
  oversizeBytes?: number;
  /** answer 200 with a body that is not JSON */
  malformed?: boolean;
  /** leave intoto entries' attestation data out, as with attestation storage off */
  omitAttestation?: boolean;
  /** flip a byte of intoto entries' attestation data */
  corruptAttestation?: boolean;
  /** POST /api/v1/log/entries/retrieve answers 404, as a log without it */
  retrieveUnsupported?: boolean;
  /** apply failNext, delayMs, oversizeBytes and malformed only to paths starting with this */
  only?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: string;
}

export interface RekorServer {
  /** http://127.0.0.1:<port> */
  url: string;
  publicKeyPem: string;
  /** hex SHA-256 of the DER SPKI */
  logId: string;
  treeId: string;
  /** a trusted root `tlogs[]` item for this log */
  trustedRootTlog: TransparencyLogInstanceJSON;
  /** fault knobs; they apply to every route except entry creation, so tests can still write */
  faults: RekorFaults;
  requests: RecordedRequest[];
  /** most requests ever in flight at once */
  maxInFlight: number;
  /** clears faults, recorded requests and maxInFlight */
  reset(): void;
  close(): Promise<void>;
}

interface Stored {
  body: Buffer;
  integratedTime: number;
  logIndex: number;
  set: Buffer;
  attestation?: Buffer;
}

/** Where the routes read from: the live log or recorded responses. */
interface Backing {
  create?(proposed: unknown): { id: string; value: object } | { status: number; message: string };
  entry(leaf: string, faults: RekorFaults): { id: string; value: object } | undefined;
  search(hash: string): string[];
  logInfo?(): object;
  publicKeyPem?: string;
}

const ROOT = '/api/v1';
const ID = /^(?:[0-9a-f]{16})?([0-9a-f]{64})$/i;

export interface RekorServerOptions {
  /** ms since epoch for integrated times (default Date.now) */
  clock?: () => number;
  /** largest statement kept as attestation data (Rekor's --max_attestation_size, 100 KiB) */
  maxAttestationSize?: number;
}

export async function startRekorServer(opts: RekorServerOptions = {}): Promise<RekorServer> {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = keys.publicKey.export({ format: 'der', type: 'spki' });
  const logId = sha256(spki);
  const clock = opts.clock ?? Date.now;
  const start = new Date(Math.floor(clock() / 1000) * 1000 - 60_000).toISOString();
  const pem = keys.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  let host = '';
  const log = new LiveLog(keys.privateKey, logId, () => host, clock, opts, pem);
  const server = await serve(log);
  host = new URL(server.url).host;
  return Object.assign(server, {
    publicKeyPem: pem,
    logId: logId.toString('hex'),
    treeId: log.treeId,
    trustedRootTlog: {
      baseUrl: server.url,
      hashAlgorithm: 'SHA2_256' as const,
      publicKey: {
        rawBytes: spki.toString('base64'),
        keyDetails: 'PKIX_ECDSA_P256_SHA_256' as const,
        validFor: { start },
      },
      logId: { keyId: logId.toString('base64') },
    },
  });
}

export type ReplayServer = Omit<
  RekorServer,
  'publicKeyPem' | 'logId' | 'treeId' | 'trustedRootTlog'
>;

/** Serves recorded entry responses (`{id: entry}` maps) and a search index (hash -> ids). */
export async function startReplayServer(
  responses: Record<string, unknown>[],
  index: Record<string, string[]>,
): Promise<ReplayServer> {
  const byLeaf = new Map<string, { id: string; value: object }>();
  for (const r of responses) {
    for (const [id, value] of Object.entries(r)) {
      byLeaf.set(id.slice(-64).toLowerCase(), { id, value: { [id]: value } });
    }
  }
  return serve({
    entry: (leaf) => byLeaf.get(leaf),
    search: (hash) => index[hash.toLowerCase()] ?? [],
  });
}

class LiveLog implements Backing {
  readonly treeId = String(randomInt(2 ** 47, 2 ** 48 - 1));
  private readonly tree = new MerkleTree();
  private readonly byLeaf = new Map<string, Stored>();
  private readonly index = new Map<string, string[]>();

  constructor(
    private readonly key: KeyObject,
    private readonly logId: Buffer,
    private readonly host: () => string,
    private readonly clock: () => number,
    private readonly opts: RekorServerOptions,
    readonly publicKeyPem: string,
  ) {}

  private get idPrefix(): string {
    return BigInt(this.treeId).toString(16).padStart(16, '0');
  }

  create(proposed: unknown) {
    let canonical: Canonical;
    try {
      canonical = canonicalize(proposed);
    } catch (e) {
      return { status: 400, message: e instanceof Error ? e.message : String(e) };
    }
    const body = Buffer.from(canonicalJSON.canonicalize(canonical.body), 'utf8');
    const leaf = sha256(LEAF, body).toString('hex');
    if (this.byLeaf.has(leaf)) {
      return { status: 409, message: `an equivalent entry already exists: ${leaf}` };
    }
    this.append(leaf, body, canonical.attestation);
    for (const key of canonical.indexKeys.map((k) => k.toLowerCase())) {
      this.index.set(key, [...new Set([...(this.index.get(key) ?? []), leaf])]);
    }
    return this.entry(leaf, {})!;
  }

  /** Integrates the entry: a leaf, an integrated time, a SET over both (rekor pkg/api/entries.go). */
  private append(leaf: string, body: Buffer, attestation: Buffer | undefined): void {
    const logIndex = this.tree.append(body);
    const integratedTime = Math.floor(this.clock() / 1000);
    const logID = this.logId.toString('hex');
    const payload = { body: body.toString('base64'), integratedTime, logID, logIndex };
    const set = this.sign(canonicalJSON.canonicalize(payload));
    // Like rekor, a statement over --max_attestation_size is logged but not stored.
    const keep = attestation && attestation.length <= (this.opts.maxAttestationSize ?? 100 * 1024);
    this.byLeaf.set(leaf, {
      body,
      integratedTime,
      logIndex,
      set,
      ...(keep ? { attestation } : {}),
    });
  }

  entry(leaf: string, faults: RekorFaults) {
    const e = this.byLeaf.get(leaf);
    if (!e) return undefined;
    const size = this.tree.size;
    let attestation = faults.omitAttestation ? undefined : e.attestation;
    if (attestation && faults.corruptAttestation) {
      attestation = Buffer.from(attestation);
      attestation[attestation.length >> 1]! ^= 0x01;
    }
    const id = this.idPrefix + leaf;
    const value = {
      body: e.body.toString('base64'),
      integratedTime: e.integratedTime,
      logID: this.logId.toString('hex'),
      logIndex: e.logIndex,
      ...(attestation ? { attestation: { data: attestation.toString('base64') } } : {}),
      verification: {
        inclusionProof: {
          logIndex: e.logIndex,
          treeSize: size,
          rootHash: this.tree.root(0, size).toString('hex'),
          hashes: this.tree.proof(e.logIndex, 0, size).map((h) => h.toString('hex')),
          checkpoint: this.checkpoint(size),
        },
        signedEntryTimestamp: e.set.toString('base64'),
      },
    };
    return { id, value: { [id]: value } };
  }

  search(hash: string): string[] {
    const key = hash.includes(':') ? hash : `sha256:${hash}`;
    return (this.index.get(key.toLowerCase()) ?? []).map((leaf) => this.idPrefix + leaf);
  }

  logInfo(): object {
    const size = this.tree.size;
    return {
      rootHash: this.tree.root(0, size).toString('hex'),
      treeSize: size,
      signedTreeHead: this.checkpoint(size),
      treeID: this.treeId,
    };
  }

  /** A signed note as rekor v1 writes it: origin "<host> - <tree id>", the signer named by host
   * alone (@sigstore/verify matches the name against the log's base URL, and it has no spaces). */
  private checkpoint(size: number): string {
    const note = [
      `${this.host()} - ${this.treeId}`,
      String(size),
      this.tree.root(0, size).toString('base64'),
      `Timestamp: ${BigInt(Math.floor(this.clock())) * 1_000_000n}`,
      '',
    ].join('\n');
    const sig = Buffer.concat([this.logId.subarray(0, 4), this.sign(note)]).toString('base64');
    return `${note}\n\u2014 ${this.host()} ${sig}\n`;
  }

  private sign(text: string): Buffer {
    return sign('sha256', Buffer.from(text, 'utf8'), this.key);
  }
}

interface Canonical {
  body: object;
  indexKeys: string[];
  /** intoto: the statement, kept as attestation data */
  attestation?: Buffer;
}

type Proposed = { kind?: unknown; apiVersion?: unknown; spec?: any };

/** Proposed entry -> the body rekor v1 stores, its search keys, its attestation. */
function canonicalize(proposed: unknown): Canonical {
  const p = (proposed ?? {}) as Proposed;
  switch (`${p.kind}:${p.apiVersion}`) {
    case 'hashedrekord:0.0.1':
      return hashedrekord(p);
    case 'intoto:0.0.2':
      return intoto(p);
    case 'dsse:0.0.1': {
      const body = canonicalDSSEEntry(p as Parameters<typeof canonicalDSSEEntry>[0]) as any;
      const env = JSON.parse(p.spec.proposedContent.envelope as string);
      const payload = Buffer.from(env.payload, 'base64');
      return {
        body,
        indexKeys: [...hashKeys(body.spec), ...subjectKeys(env.payloadType, payload)],
      };
    }
    default:
      throw new Error(`unsupported entry kind ${String(p.kind)} ${String(p.apiVersion)}`);
  }
}

/** Not checked: the signature over the digest (the gate's tests never log a bad one). */
function hashedrekord(p: Proposed): Canonical {
  const { hash } = p.spec?.data ?? {};
  const sig = p.spec?.signature ?? {};
  if (!['sha256', 'sha512'].includes(hash?.algorithm) || typeof hash?.value !== 'string') {
    throw new Error('hashedrekord needs data.hash {algorithm, value}');
  }
  if (typeof sig.content !== 'string' || typeof sig.publicKey?.content !== 'string') {
    throw new Error('hashedrekord needs signature.content and signature.publicKey.content');
  }
  const body = {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: hash.algorithm, value: hash.value.toLowerCase() } },
      signature: { content: sig.content, publicKey: { content: sig.publicKey.content } },
    },
  };
  return { body, indexKeys: [`${hash.algorithm}:${hash.value}`] };
}

/**
 * intoto 0.0.2 (rekor pkg/types/intoto/v0.0.2): payload and each sig arrive as base64 of the
 * envelope's base64 strings; every signature must verify under its publicKey (base64 PEM). The
 * body drops the payload and gains hash (of the envelope JSON) and payloadHash (of the payload).
 */
function intoto(p: Proposed): Canonical {
  const env = p.spec?.content?.envelope ?? {};
  const b64 = (v: unknown) => Buffer.from(String(v), 'base64');
  const payloadB64 = b64(env.payload).toString('utf8');
  const payload = b64(payloadB64);
  const sigs = (env.signatures ?? []) as { keyid?: string; sig: string; publicKey: string }[];
  if (typeof env.payloadType !== 'string' || sigs.length === 0) {
    throw new Error('intoto envelope needs payloadType and signatures');
  }
  const pae = preAuthEncoding(env.payloadType, payload);
  for (const s of sigs) {
    const pem = b64(s.publicKey).toString('utf8');
    if (!verify('sha256', pae, pem, b64(b64(s.sig).toString('utf8')))) {
      throw new Error('all signatures must have a key that verifies it');
    }
  }
  const envelopeJSON = JSON.stringify({
    payloadType: env.payloadType,
    payload: payloadB64,
    signatures: sigs.map((s) => ({ keyid: s.keyid ?? '', sig: b64(s.sig).toString('utf8') })),
  });
  const spec = {
    content: {
      envelope: { payloadType: env.payloadType, signatures: sigs },
      hash: { algorithm: 'sha256', value: sha256(Buffer.from(envelopeJSON)).toString('hex') },
      payloadHash: { algorithm: 'sha256', value: sha256(payload).toString('hex') },
    },
  };
  const indexKeys = [...hashKeys(spec.content), ...subjectKeys(env.payloadType, payload)];
  return { body: { apiVersion: '0.0.2', kind: 'intoto', spec }, indexKeys, attestation: payload };
}

function hashKeys(spec: Record<string, any>): string[] {
  return ['hash', 'envelopeHash', 'payloadHash']
    .map((k) => spec[k])
    .filter((h) => h?.value)
    .map((h) => `${h.algorithm}:${h.value}`);
}

/** Like rekor, an in-toto statement's subjects are searchable by each of their digests. */
function subjectKeys(payloadType: string, payload: Buffer): string[] {
  if (payloadType !== 'application/vnd.in-toto+json') return [];
  try {
    const statement = JSON.parse(payload.toString('utf8')) as { subject?: { digest?: object }[] };
    return (statement.subject ?? []).flatMap((s) =>
      Object.entries(s.digest ?? {}).map(([alg, hex]) => `${alg}:${String(hex)}`),
    );
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class RekorHttp {
  url = '';
  faults: RekorFaults = {};
  requests: RecordedRequest[] = [];
  maxInFlight = 0;
  private inFlight = 0;
  readonly server = createServer((req, res) => {
    this.handle(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, { code: 500, message: String(err) });
    });
  });

  constructor(private readonly backing: Backing) {}

  reset(): void {
    this.faults = {};
    this.requests = [];
    this.maxInFlight = 0;
  }

  close(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    res.on('error', () => {});
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const path = (req.url ?? '').split('?')[0] ?? '';
    const method = req.method ?? 'GET';
    this.requests.push({ method, path, body });
    const creating = method === 'POST' && path === `${ROOT}/log/entries`;
    const targeted = path.startsWith(this.faults.only ?? '');
    if (!creating && targeted && (await this.injectFault(res))) return;
    this.route(res, method, path, body);
  }

  private async injectFault(res: ServerResponse): Promise<boolean> {
    const f = this.faults;
    if (f.delayMs) await sleep(f.delayMs);
    if (f.failNext && f.failNext.count > 0) {
      f.failNext.count--;
      const status = f.failNext.status ?? 503;
      const headers: Record<string, string> = f.failNext.retryAfter
        ? { 'retry-after': f.failNext.retryAfter }
        : {};
      send(res, status, { code: status, message: 'injected failure' }, headers);
      return true;
    }
    if (f.oversizeBytes) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      for (let sent = 0; sent < f.oversizeBytes && !res.destroyed; sent += chunk.length) {
        res.write(chunk);
      }
      res.end();
      return true;
    }
    if (f.malformed) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"not json');
      return true;
    }
    return false;
  }

  private route(res: ServerResponse, method: string, path: string, body: string): void {
    const b = this.backing;
    const key = `${method} ${path}`;
    if (key === `POST ${ROOT}/log/entries` && b.create) return this.create(res, body);
    if (key === `POST ${ROOT}/log/entries/retrieve`) return this.retrieve(res, body);
    if (key === `POST ${ROOT}/index/retrieve`) return this.search(res, body);
    if (key === `GET ${ROOT}/log` && b.logInfo) return send(res, 200, b.logInfo());
    if (key === `GET ${ROOT}/log/publicKey` && b.publicKeyPem) {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(b.publicKeyPem);
      return;
    }
    const id =
      method === 'GET' && path.startsWith(`${ROOT}/log/entries/`) ? ID.exec(path.slice(20)) : null;
    if (id) return this.sendEntry(res, id[1]!.toLowerCase());
    send(res, 404, { code: 404, message: `no route ${key}` });
  }

  private create(res: ServerResponse, body: string): void {
    let proposed: unknown;
    try {
      proposed = JSON.parse(body);
    } catch {
      return send(res, 400, { code: 400, message: 'body is not json' });
    }
    const out = this.backing.create!(proposed);
    if ('status' in out) return send(res, out.status, { code: out.status, message: out.message });
    send(res, 201, out.value, {
      etag: out.id,
      location: `${ROOT}/log/entries/${out.id}`,
    });
  }

  private sendEntry(res: ServerResponse, leaf: string | undefined): void {
    const found = leaf === undefined ? undefined : this.backing.entry(leaf, this.faults);
    if (!found) return send(res, 404, { code: 404, message: 'entry not found' });
    send(res, 200, found.value);
  }

  private retrieve(res: ServerResponse, body: string): void {
    if (this.faults.retrieveUnsupported) return send(res, 404, { code: 404, message: 'not found' });
    const ids = parse(body)?.entryUUIDs;
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((i) => !ID.test(String(i)))) {
      return send(res, 400, { code: 400, message: 'entryUUIDs must be 1-10 entry ids' });
    }
    if (ids.length > 10) return send(res, 422, { code: 422, message: 'at most 10 entryUUIDs' });
    const found = ids
      .map((i) => this.backing.entry(ID.exec(String(i))![1]!.toLowerCase(), this.faults))
      .filter((e) => e !== undefined);
    send(
      res,
      200,
      found.map((e) => e.value),
    );
  }

  private search(res: ServerResponse, body: string): void {
    const hash = parse(body)?.hash;
    const ok = /^(sha512:)?[0-9a-f]{128}$|^(sha256:)?[0-9a-f]{64}$|^(sha1:)?[0-9a-f]{40}$/i;
    if (typeof hash !== 'string' || !ok.test(hash)) {
      return send(res, 400, { code: 400, message: 'hash must be [alg:]hex' });
    }
    send(res, 200, this.backing.search(hash.includes(':') ? hash : `sha256:${hash}`));
  }
}

function parse(body: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function send(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

async function serve(backing: Backing): Promise<RekorHttp> {
  const http = new RekorHttp(backing);
  await new Promise<void>((resolve, reject) => {
    http.server.once('error', reject);
    http.server.listen(0, '127.0.0.1', resolve);
  });
  http.url = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
  return http;
}

/** Client side: a DSSE envelope in its JSON form (payload and sig base64). */
export interface EnvelopeJSON {
  payloadType: string;
  payload: string;
  signatures: { keyid?: string; sig: string }[];
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** The proposed intoto 0.0.2 entry rekor-cli uploads for an envelope signed under `pem`. */
export function intotoProposal(env: EnvelopeJSON, pem: string): object {
  const signatures = env.signatures.map((s) => ({
    ...(s.keyid ? { keyid: s.keyid } : {}),
    sig: b64(s.sig),
    publicKey: b64(pem),
  }));
  return {
    apiVersion: '0.0.2',
    kind: 'intoto',
    spec: {
      content: {
        envelope: { payloadType: env.payloadType, payload: b64(env.payload), signatures },
      },
    },
  };
}

/** The proposed dsse 0.0.1 entry cosign uploads. */
export function dsseProposal(env: EnvelopeJSON, pem: string): object {
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: { proposedContent: { envelope: JSON.stringify(env), verifiers: [b64(pem)] } },
  };
}

export function hashedrekordProposal(digestHex: string, signature: Buffer, pem: string): object {
  return {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: digestHex } },
      signature: { content: signature.toString('base64'), publicKey: { content: b64(pem) } },
    },
  };
}

/** POST /api/v1/log/entries; returns the entry id and the entry as the log answered. */
export async function upload(url: string, proposed: object): Promise<{ id: string; entry: any }> {
  const res = await fetch(`${url}/api/v1/log/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(proposed),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`upload: http ${res.status}: ${text}`);
  const [id, entry] = Object.entries(JSON.parse(text) as Record<string, unknown>)[0]!;
  return { id, entry };
}
