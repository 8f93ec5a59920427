import { generateKeyPairSync } from 'node:crypto';
import { initializeCA, initializeTSA, tsaHandler } from '@sigstore/mock';
import { serveHandlers, type HttpService } from './http-service.js';
import { SIGNING_CERT_PATH, signingCertHandler } from './local-fulcio.js';
import {
  TRUSTED_ROOT_MEDIA_TYPE,
  type LocalSigstore,
  type ServiceName,
  type TrustedRootJSON,
} from './sigstore-services.js';

const TSA_PATH = '/api/v1/timestamp';

/**
 * Where a GitHub-like instance has no service: minting with `tlog: true` against it fails loudly
 * (port 9 is discard; nothing listens on it here).
 */
const NO_TRANSPARENCY_LOG = 'http://127.0.0.1:9/no-transparency-log';

export interface LocalGitHubSigstoreOptions {
  /** per-service clocks (ms since epoch), as startLocalSigstore's `clocks` */
  clocks?: Partial<Record<Exclude<ServiceName, 'rekor'>, () => number>>;
}

const b64 = (v: ArrayBufferView): string =>
  Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const wholeSeconds = (ms: number) => Math.floor(ms / 1000) * 1000;

/**
 * A Sigstore instance shaped like GitHub's own (private repositories, release attestations): a
 * Fulcio CA that embeds no SCT and a timestamp authority; no transparency log and no CT log, so
 * its trusted root lists neither. Same @sigstore/mock building blocks as startLocalSigstore; mint
 * against it with `tlog: false, tsa: true`.
 */
export async function startLocalGitHubSigstore(
  opts: LocalGitHubSigstoreOptions = {},
): Promise<LocalSigstore> {
  const clockFor = (name: 'fulcio' | 'tsa') => {
    const source = opts.clocks?.[name] ?? Date.now;
    const date = new Date(wholeSeconds(source()));
    return { date, tick: () => void date.setTime(wholeSeconds(source())) };
  };
  const [caClock, tsaClock] = [clockFor('fulcio'), clockFor('tsa')];
  const start = new Date(Math.min(caClock.date.getTime(), tsaClock.date.getTime())).toISOString();
  const keys = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const services: HttpService[] = [];
  try {
    // No CT log: the CA issues certificates without an embedded SCT, as GitHub's Fulcio does.
    const ca = await initializeCA(keys(), undefined, caClock.date);
    const fulcio = await serveHandlers(
      { [SIGNING_CERT_PATH]: signingCertHandler(ca) },
      caClock.tick,
    );
    services.push(fulcio);
    const tsa = await initializeTSA(keys(), tsaClock.date);
    const tsaService = await serveHandlers({ [TSA_PATH]: tsaHandler(tsa).fn }, tsaClock.tick);
    services.push(tsaService);
    const trustedRoot: TrustedRootJSON = {
      mediaType: TRUSTED_ROOT_MEDIA_TYPE,
      tlogs: [],
      certificateAuthorities: [
        {
          subject: { organization: 'GitHub, Inc.', commonName: 'Internal Services Root' },
          uri: fulcio.url,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor: { start },
        },
      ],
      ctlogs: [],
      timestampAuthorities: [
        {
          subject: { organization: 'GitHub, Inc.', commonName: 'TSA Timestamping' },
          uri: tsaService.url,
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
      rekorURL: NO_TRANSPARENCY_LOG,
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

/** JSON Lines of several roots, as `gh attestation trusted-root` prints them. */
export function trustedRootLines(...roots: TrustedRootJSON[]): string {
  return roots.map((r) => JSON.stringify(r)).join('\n') + '\n';
}
