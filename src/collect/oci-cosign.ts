import { createHash } from 'node:crypto';
import { GateError } from '../errors.js';
import { isPlainObject, sha256Hex as sha256 } from '../util/input.js';
import type { OciClient } from './oci-client.js';
import { coded, takeEntry, type LayoutName } from './oci-layouts.js';
import {
  DOCKER_MANIFEST,
  OCI_MANIFEST,
  parseDescriptor,
  invalid,
  type Descriptor,
} from './oci-manifest.js';
import { describeRepository, type Repository } from './oci-ref.js';
import type { LayoutReport, OciCollectResult } from './oci.js';
import { base64, malformed } from './rekor-entry.js';
import type { Evidence, PlatformManifest } from './types.js';

/**
 * cosign's legacy layouts: before bundles were OCI artifacts, `cosign attest` and `cosign sign`
 * (and cosign 3 with `--new-bundle-format=false`) wrote an image manifest tagged
 * `sha256-<hex>.att` or `sha256-<hex>.sig` next to the image, one layer per signature, with the
 * verification material in the layer's annotations (cosign pkg/oci/static):
 *
 * - `.att`: layers `application/vnd.dsse.envelope.v1+json`, each blob a DSSE envelope;
 * - `.sig`: layers `application/vnd.dev.cosign.simplesigning.v1+json`, each blob the signed
 *   simple-signing payload, its signature base64 in `dev.cosignproject.cosign/signature`.
 *
 * Each layer is rebuilt as a v0.1 Sigstore bundle (the log entry in the annotations carries only
 * the log's signed entry timestamp, an inclusion promise: v0.1 is the bundle version for that),
 * so the verifier checks it like any other bundle.
 */
export const COSIGN_ANNOTATIONS = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
  timestamp: 'dev.sigstore.cosign/rfc3161timestamp',
} as const;

export const DSSE_LAYER = 'application/vnd.dsse.envelope.v1+json';
export const SIMPLE_SIGNING_LAYER = 'application/vnd.dev.cosign.simplesigning.v1+json';
const BUNDLE_V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';

type CosignLayout = Extract<LayoutName, 'cosign-att' | 'cosign-sig'>;
const LAYOUTS: ReadonlyArray<{ layout: CosignLayout; suffix: string; layerType: string }> = [
  { layout: 'cosign-att', suffix: 'att', layerType: DSSE_LAYER },
  { layout: 'cosign-sig', suffix: 'sig', layerType: SIMPLE_SIGNING_LAYER },
];

export interface CosignSearchOpts {
  /** more layers than this in one tag is SOURCE_LIMIT_EXCEEDED */
  maxReferrers: number;
  signal?: AbortSignal;
  /** the evidence is for a platform manifest of the image index asked about */
  via?: PlatformManifest;
}

/**
 * Reads the `.att` and `.sig` tags of `subject` in `repo` and adds what they hold to `result`:
 * one report each (absent: no such tag; failed: could not look), one piece of evidence per
 * layer rebuilt, one rejection per layer that cannot be.
 */
export async function searchCosignTags(
  client: OciClient,
  repo: Repository,
  subject: string,
  opts: CosignSearchOpts,
  result: OciCollectResult,
): Promise<void> {
  for (const spec of LAYOUTS) await searchTag(client, repo, subject, spec, opts, result);
}

async function searchTag(
  client: OciClient,
  repo: Repository,
  subject: string,
  spec: (typeof LAYOUTS)[number],
  opts: CosignSearchOpts,
  result: OciCollectResult,
): Promise<void> {
  const where = describeRepository(repo);
  const report: LayoutReport = {
    where: `oci:${where}`,
    layout: spec.layout,
    subject,
    outcome: 'listed',
    referrers: 0,
    bundles: 0,
    rejected: 0,
  };
  result.searched.push(report);
  let layers: Array<Descriptor | GateError> | undefined;
  try {
    layers = await tagLayers(client, repo, cosignTag(subject, spec.suffix), opts);
  } catch (err) {
    report.outcome = 'failed';
    result.failures.push({ source: `oci:${where}#${spec.layout}`, ...coded(err) });
    return;
  }
  if (!layers) {
    report.outcome = 'absent';
    return;
  }
  const origin = `oci:${where}@${subject}#${spec.layout}`;
  for (const layer of layers) {
    report.referrers++;
    // Layers of other types (none that cosign writes) are not signatures: skipped, as referrers
    // of other artifact types are.
    if (!(layer instanceof Error) && layer.mediaType !== spec.layerType) continue;
    const source = layer instanceof Error ? origin : `${origin}:${layer.digest}`;
    await takeEntry(layer, source, report, result, async (listed) => {
      const blob = await client.blob(repo, listed.digest, listed.size, opts.signal);
      const annotations = listed.annotations ?? {};
      const found =
        spec.layout === 'cosign-att'
          ? { kind: 'bundle' as const, bytes: rebuildAttestation(blob, annotations) }
          : {
              kind: 'image-signature' as const,
              bytes: rebuildSignature(blob, annotations),
              payload: blob,
            };
      const evidence: Evidence = { id: sha256(found.bytes), source, ...found };
      if (opts.via) evidence.via = opts.via;
      return [evidence];
    });
  }
}

/** cosign's tag for a digest: `<alg>-<hex>.<suffix>` (pkg/oci/remote). */
export function cosignTag(subject: string, suffix: string): string {
  return `${subject.replace(':', '-')}.${suffix}`;
}

/** The layers of the image manifest at `tag`; undefined when there is no such tag. */
async function tagLayers(
  client: OciClient,
  repo: Repository,
  tag: string,
  opts: CosignSearchOpts,
): Promise<Array<Descriptor | GateError> | undefined> {
  // A tag is at most 128 characters: a sha512 subject's cosign tag cannot exist.
  if (tag.length > 128) return undefined;
  const m = await client.manifest(repo, tag, opts.signal);
  if (!m) return undefined;
  if (m.mediaType !== OCI_MANIFEST && m.mediaType !== DOCKER_MANIFEST) {
    throw invalid(`tag ${tag} holds ${m.mediaType}, not an image manifest`);
  }
  if (!Array.isArray(m.doc.layers)) throw invalid(`tag ${tag} has no layers list`);
  if (m.doc.layers.length > opts.maxReferrers) {
    throw new GateError(
      'SOURCE_LIMIT_EXCEEDED',
      `tag ${tag} has more than ${opts.maxReferrers} layers`,
    );
  }
  return m.doc.layers.map((l, i) => {
    try {
      return parseDescriptor(l, `tag ${tag} layer ${i}`);
    } catch (err) {
      return err as GateError;
    }
  });
}

/**
 * A `.att` layer as a v0.1 bundle: the DSSE envelope as its content, the annotations as its
 * verification material. The envelope is taken field by field (payloadType, payload, signatures
 * with sig and keyid); the bundle parser then checks every base64 field strictly.
 */
export function rebuildAttestation(blob: Buffer, annotations: Record<string, string>): Buffer {
  const env = parseJSONObject(blob, 'dsse layer');
  const { payloadType, payload, signatures } = env;
  if (
    typeof payloadType !== 'string' ||
    typeof payload !== 'string' ||
    !Array.isArray(signatures)
  ) {
    throw malformed('dsse layer is not a dsse envelope (payloadType, payload, signatures)');
  }
  const sigs = signatures.map((s, i) => {
    if (!isPlainObject(s) || typeof s.sig !== 'string') {
      throw malformed(`dsse layer signature ${i} has no sig`);
    }
    return typeof s.keyid === 'string' && s.keyid !== ''
      ? { sig: s.sig, keyid: s.keyid }
      : { sig: s.sig };
  });
  return bundleOf(annotations, { dsseEnvelope: { payload, payloadType, signatures: sigs } });
}

/**
 * A `.sig` layer as a v0.1 message-signature bundle over the layer's bytes: the signature from
 * its annotation, the digest computed here (the verifier recomputes it from the payload it is
 * given, and the log entry must name the same one).
 */
export function rebuildSignature(blob: Buffer, annotations: Record<string, string>): Buffer {
  const sig = annotations[COSIGN_ANNOTATIONS.signature];
  if (!sig) throw malformed(`signature layer has no ${COSIGN_ANNOTATIONS.signature} annotation`);
  const signature = base64(sig, `annotation ${COSIGN_ANNOTATIONS.signature}`).toString('base64');
  const digest = createHash('sha256').update(blob).digest('base64');
  return bundleOf(annotations, {
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest }, signature },
  });
}

/**
 * A layer without a Rekor bundle annotation and without a timestamp is rebuilt all the same,
 * with no log entry: whether a bundle may do without one is the verifier's rule (per trusted
 * root, per threshold), and deciding it here too would make two rules that could drift. The
 * verifier rejects it with its own code (no timestamp, no log entry).
 */
function bundleOf(annotations: Record<string, string>, content: object): Buffer {
  const timestamps = timestampData(annotations[COSIGN_ANNOTATIONS.timestamp]);
  const bundle = {
    mediaType: BUNDLE_V01,
    verificationMaterial: {
      ...keyMaterial(annotations),
      tlogEntries: tlogEntries(annotations[COSIGN_ANNOTATIONS.bundle]),
      ...(timestamps ? { timestampVerificationData: timestamps } : {}),
    },
    ...content,
  };
  return Buffer.from(JSON.stringify(bundle));
}

/**
 * The leaf certificate then its chain (cosign writes the chain Fulcio returned: intermediates and
 * root), or, for a key-signed layer (no certificate annotation), a public key with no hint:
 * cosign records none, and the verifier tries the configured keys.
 */
function keyMaterial(annotations: Record<string, string>): object {
  const leafPem = annotations[COSIGN_ANNOTATIONS.certificate]?.trim();
  if (!leafPem) return { publicKey: { hint: '' } };
  const leaf = pemCertificates(leafPem, `annotation ${COSIGN_ANNOTATIONS.certificate}`);
  if (leaf.length !== 1) {
    throw malformed(
      `annotation ${COSIGN_ANNOTATIONS.certificate} holds ${leaf.length} certificates, expected 1`,
    );
  }
  const chain = pemCertificates(
    annotations[COSIGN_ANNOTATIONS.chain] ?? '',
    `annotation ${COSIGN_ANNOTATIONS.chain}`,
  );
  return {
    x509CertificateChain: {
      certificates: [...leaf, ...chain].map((der) => ({ rawBytes: der.toString('base64') })),
    },
  };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;

/** The certificates of a PEM text, in order; anything but certificate blocks and whitespace is
 * malformed, so a truncated or garbled annotation is not silently read as fewer certificates. */
function pemCertificates(text: string, what: string): Buffer[] {
  const certs: Buffer[] = [];
  let rest = text;
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== 'CERTIFICATE') throw malformed(`${what} holds a ${m[1]!.toLowerCase()} block`);
    certs.push(base64(m[2]!.replace(/\s+/g, ''), what));
    rest = rest.replace(m[0], '');
  }
  if (rest.trim() !== '') throw malformed(`${what} is not pem certificates`);
  return certs;
}

/**
 * cosign's RekorBundle annotation (pkg/cosign/bundle): `{"SignedEntryTimestamp": b64, "Payload":
 * {"body": b64, "integratedTime": n, "logIndex": n, "logID": hex}}`, the fields the log signed.
 * The entry's kind and version are read from the body, as the verifier compares them.
 */
function tlogEntries(annotation: string | undefined): object[] {
  if (annotation === undefined || annotation.trim() === '') return [];
  const what = `annotation ${COSIGN_ANNOTATIONS.bundle}`;
  const doc = parseJSONObject(annotation, what);
  const payload = doc.Payload;
  if (!isPlainObject(payload)) throw malformed(`${what} has no Payload object`);
  const set = base64(doc.SignedEntryTimestamp, `${what} SignedEntryTimestamp`);
  const body = base64(payload.body, `${what} Payload.body`);
  if (set.length === 0 || body.length === 0) {
    throw malformed(`${what} has an empty SignedEntryTimestamp or body`);
  }
  const { integratedTime, logIndex, logID } = payload;
  if (!isCount(integratedTime) || !isCount(logIndex)) {
    throw malformed(`${what} needs integer integratedTime and logIndex`);
  }
  if (typeof logID !== 'string' || !/^[0-9a-fA-F]{64}$/.test(logID)) {
    throw malformed(`${what} logID is not 64 hex digits`);
  }
  const entry = parseJSONObject(body, `${what} body`);
  if (typeof entry.kind !== 'string' || typeof entry.apiVersion !== 'string') {
    throw malformed(`${what} body has no kind and apiVersion`);
  }
  return [
    {
      logIndex: String(logIndex),
      logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
      kindVersion: { kind: entry.kind, version: entry.apiVersion },
      integratedTime: String(integratedTime),
      inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
      canonicalizedBody: body.toString('base64'),
    },
  ];
}

/** cosign's RFC3161Timestamp annotation: `{"SignedRFC3161Timestamp": b64}` (a DER response). */
function timestampData(annotation: string | undefined): object | undefined {
  if (annotation === undefined || annotation.trim() === '') return undefined;
  const what = `annotation ${COSIGN_ANNOTATIONS.timestamp}`;
  const doc = parseJSONObject(annotation, what);
  const der = base64(doc.SignedRFC3161Timestamp, `${what} SignedRFC3161Timestamp`);
  if (der.length === 0) throw malformed(`${what} is empty`);
  return { rfc3161Timestamps: [{ signedTimestamp: der.toString('base64') }] };
}

function parseJSONObject(text: Buffer | string, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text.toString());
  } catch {
    throw malformed(`${what} is not json`);
  }
  if (!isPlainObject(doc)) throw malformed(`${what} is not a json object`);
  return doc;
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
