import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  initializeCA,
  initializeCTLog,
  initializeTLog,
  initializeTSA,
  rekorHandler,
  tsaHandler,
  type HandlerFn,
} from '@sigstore/mock';
import { serveHandlers, type HttpService } from './http-service.js';
import { SIGNING_CERT_PATH, signingCertHandler } from './local-fulcio.js';
import { CREATE_ENTRY_PATH, canonicalizingRekorHandler } from './local-rekor.js';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
const TSA_PATH = '/api/v1/timestamp';

/** validFor as in protobuf-specs JSON: RFC 3339 strings. */
export interface ValidForJSON {
  start: string;
  end?: string;
}
export interface TransparencyLogInstanceJSON {
  baseUrl: string;
  hashAlgorithm: 'SHA2_256';
  publicKey: { rawBytes: string; keyDetails: 'PKIX_ECDSA_P256_SHA_256'; validFor: ValidForJSON };
  logId: { keyId: string };
}
export interface CertificateAuthorityJSON {
  subject: { organization: string; commonName: string };
  uri: string;
  certChain: { certificates: { rawBytes: string }[] };
  validFor: ValidForJSON;
}
/** A trusted_root.json document (dev.sigstore.trustroot.v1.TrustedRoot, JSON form). */
export interface TrustedRootJSON {
  mediaType: string;
  tlogs: TransparencyLogInstanceJSON[];
  certificateAuthorities: CertificateAuthorityJSON[];
  ctlogs: TransparencyLogInstanceJSON[];
  timestampAuthorities: CertificateAuthorityJSON[];
}

export interface LocalSigstore {
  /** Fulcio v2 API (POST /api/v2/signingCert); the CT log runs inside it, as with real Fulcio */
  fulcioURL: string;
  /** Rekor v1 API (POST /api/v1/log/entries) */
  rekorURL: string;
  /** timestamp authority (POST /api/v1/timestamp, JSON request, DER response) */
  tsaURL: string;
  /** trust material for all four services; a fresh deep copy is safe to mutate per test */
  trustedRoot: TrustedRootJSON;
  close(): Promise<void>;
}

export type ServiceName = 'fulcio' | 'rekor' | 'tsa';

export interface LocalSigstoreOptions {
  /**
   * Time source (ms since epoch) for certificates and SCTs (fulcio), integrated times and
   * checkpoints (rekor) and timestamps (tsa); default Date.now. Read on every request and
   * truncated to whole seconds. Keep it at or after real start time and within 365 days: the
   * mock's root certificates are issued at real time.
   */
  clock?: () => number;
  /** per-service override of `clock`, e.g. { tsa: () => Date.now() + 11 * 60_000 } to stamp
   * signatures after the 10-minute Fulcio certificate expired */
  clocks?: Partial<Record<ServiceName, () => number>>;
}

/**
 * Real Rekor names a created entry in `ETag` and `Location` (sigstore/rekor pkg/api/entries.go);
 * sigstore-go, and so cosign v3, reads the entry out of the answer by its ETag.
 */
function createdEntryHeaders(statusCode: number, payload: Buffer): Record<string, string> {
  if (statusCode !== 201) return {};
  try {
    const uuid = Object.keys(JSON.parse(payload.toString('utf8')) as object)[0];
    return uuid ? { etag: uuid, location: `${CREATE_ENTRY_PATH}/${uuid}` } : {};
  } catch {
    return {};
  }
}

const newKeyPair = (): { publicKey: KeyObject; privateKey: KeyObject } =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' });

const spki = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'spki' });
const b64 = (v: ArrayBufferView): string =>
  Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

function logInstance(baseUrl: string, key: KeyObject, start: string): TransparencyLogInstanceJSON {
  const der = spki(key);
  return {
    baseUrl,
    hashAlgorithm: 'SHA2_256',
    publicKey: {
      rawBytes: der.toString('base64'),
      keyDetails: 'PKIX_ECDSA_P256_SHA_256',
      validFor: { start },
    },
    logId: { keyId: createHash('sha256').update(der).digest('base64') },
  };
}

/**
 * Starts an ephemeral Fulcio (CA + CT log), Rekor v1 and TSA from @sigstore/mock's building
 * blocks, each on its own 127.0.0.1 port. Start once per test file and mint many bundles.
 */
export async function startLocalSigstore(opts: LocalSigstoreOptions = {}): Promise<LocalSigstore> {
  // @sigstore/mock reads `clock || new Date()` on every call, so a Date we mutate in place acts as
  // a settable clock; each server sets its Date before handling a request. Whole seconds matter:
  // the mock TSA writes GeneralizedTime fractions with trailing zeros dropped (".12Z", ~1 in 10),
  // which @sigstore/core's parser (exactly 3 digits or none) rejects.
  const source = (name: ServiceName) => opts.clocks?.[name] ?? opts.clock ?? Date.now;
  const wholeSeconds = (ms: number) => Math.floor(ms / 1000) * 1000;
  const clockFor = (name: ServiceName) => {
    const date = new Date(wholeSeconds(source(name)()));
    return { date, tick: () => void date.setTime(wholeSeconds(source(name)())) };
  };
  const [caClock, tlogClock, tsaClock] = [clockFor('fulcio'), clockFor('rekor'), clockFor('tsa')];
  const start = new Date(
    Math.min(caClock.date.getTime(), tlogClock.date.getTime(), tsaClock.date.getTime()),
  ).toISOString();

  const [caKeys, ctKeys, tlogKeys, tsaKeys] = [
    newKeyPair(),
    newKeyPair(),
    newKeyPair(),
    newKeyPair(),
  ];
  const services: HttpService[] = [];
  try {
    const ctlog = await initializeCTLog(ctKeys, caClock.date);
    const ca = await initializeCA(caKeys, ctlog, caClock.date);
    const fulcio = await serveHandlers(
      { [SIGNING_CERT_PATH]: signingCertHandler(ca) },
      caClock.tick,
    );
    services.push(fulcio);

    // The tlog names itself after its URL's host in checkpoints, so bind the port first.
    let rekorRoute: HandlerFn = async () => ({ statusCode: 503, response: 'starting' });
    const rekor = await serveHandlers(
      { [CREATE_ENTRY_PATH]: (b) => rekorRoute(b) },
      tlogClock.tick,
      createdEntryHeaders,
    );
    services.push(rekor);
    const tlog = await initializeTLog(rekor.url, tlogKeys, tlogClock.date);
    rekorRoute = canonicalizingRekorHandler(rekorHandler(tlog).fn);

    const tsa = await initializeTSA(tsaKeys, tsaClock.date);
    const tsaService = await serveHandlers({ [TSA_PATH]: tsaHandler(tsa).fn }, tsaClock.tick);
    services.push(tsaService);

    const trustedRoot: TrustedRootJSON = {
      mediaType: TRUSTED_ROOT_MEDIA_TYPE,
      tlogs: [logInstance(rekor.url, tlogKeys.publicKey, start)],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: fulcio.url,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor: { start },
        },
      ],
      // The CT log has no HTTP endpoint of its own (Fulcio submits precertificates in-process).
      ctlogs: [logInstance(fulcio.url, ctKeys.publicKey, start)],
      timestampAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'tsa' },
          uri: tsaService.url,
          // leaf (signing) certificate first, then the root
          certChain: {
            certificates: [
              { rawBytes: b64(tsa.intCertificate) },
              { rawBytes: b64(tsa.rootCertificate) },
            ],
          },
          validFor: { start },
        },
      ],
    };
    let closing: Promise<void> | undefined;
    return {
      fulcioURL: fulcio.url,
      rekorURL: rekor.url,
      tsaURL: tsaService.url,
      get trustedRoot() {
        return structuredClone(trustedRoot);
      },
      close: () => (closing ??= Promise.all(services.map((s) => s.close())).then(() => {})),
    };
  } catch (e) {
    await Promise.allSettled(services.map((s) => s.close()));
    throw e;
  }
}
