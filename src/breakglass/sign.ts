import crypto from 'node:crypto';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import {
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  DSSEBundleBuilder,
  FulcioSigner,
  InternalError,
  RekorWitness,
  TSAWitness,
  type Artifact,
  type Signature,
  type Signer,
  type Witness,
} from '@sigstore/sign';
import { GateError, type GateErrorCode } from '../errors.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../verify/attestation.js';
import { keyIdOf, normaliseKeyId } from '../verify/key-id.js';

export { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL };

/** Where a signature is certified, logged and timestamped: public-good unless told otherwise. */
export interface SigningServices {
  fulcioURL?: string;
  rekorURL?: string;
  /** an RFC 3161 timestamp authority (sigstore's TSA API); none by default */
  tsaURL?: string;
  /** per request; default 10 s */
  timeoutMs?: number;
  /** retries of a refused connection or a 5xx answer; default 1 */
  retries?: number;
}

export type SigningIdentity =
  { kind: 'keyless'; token: () => Promise<string> } | { kind: 'key'; privateKey: crypto.KeyObject };

export interface SignOptions {
  identity: SigningIdentity;
  services: SigningServices;
  /**
   * Called with the signer's name (certificate SAN, or key id) once it is known and before
   * anything is logged: throwing stops the signing with nothing written to the log.
   */
  checkSigner?: (signer: string) => void;
}

export interface SignedPayload {
  bundle: SerializedBundle;
  /** the name the gate will know the signer by: certificate SAN, or key id (base64) */
  signer: string;
}

/**
 * Signs payload bytes as an in-toto DSSE envelope through sigstore-js: keyless (an ephemeral key
 * certified by Fulcio for an OIDC identity) or with a private key, logged in Rekor (dsse entry)
 * and, when a TSA is named, timestamped. The bundle is what `gate check --break-glass` reads.
 */
export async function signPayload(payload: Buffer, o: SignOptions): Promise<SignedPayload> {
  const fetchOptions = { timeout: o.services.timeoutMs ?? 10_000, retry: o.services.retries ?? 1 };
  let signer = '';
  const inner: Signer =
    o.identity.kind === 'key'
      ? keySigner(o.identity.privateKey)
      : new FulcioSigner({
          identityProvider: { getToken: o.identity.token },
          fulcioBaseURL: o.services.fulcioURL ?? DEFAULT_FULCIO_URL,
          ...fetchOptions,
        });
  const checked: Signer = {
    async sign(data: Buffer): Promise<Signature> {
      const sig = await inner.sign(data);
      signer = signerName(sig);
      o.checkSigner?.(signer);
      return sig;
    },
  };
  const witnesses: Witness[] = [
    new RekorWitness({
      rekorBaseURL: o.services.rekorURL ?? DEFAULT_REKOR_URL,
      entryType: 'dsse',
      fetchOnConflict: true,
      ...fetchOptions,
    }),
  ];
  if (o.services.tsaURL)
    witnesses.push(new TSAWitness({ tsaBaseURL: o.services.tsaURL, ...fetchOptions }));
  try {
    const bundle = await new EnvelopeBuilder({ signer: checked, witnesses }).create({
      data: payload,
      type: IN_TOTO_PAYLOAD_TYPE,
    });
    return { bundle: bundleToJSON(bundle), signer };
  } catch (err) {
    throw signingError(err, o.services);
  }
}

/**
 * sigstore-js writes a key's hint both as the bundle's publicKey.hint and as the envelope
 * signature's keyid. cosign (go-securesystemslib's DSSE verifier) skips a signature whose keyid
 * is not the hex SHA-256 of the key it verifies with, so a base64 keyid would never verify there.
 * The keyid is left empty, as cosign writes it, before the envelope is logged; the hint stays.
 */
class EnvelopeBuilder extends DSSEBundleBuilder {
  protected override async package(artifact: Artifact, signature: Signature) {
    const bundle = await super.package(artifact, signature);
    for (const s of bundle.content.dsseEnvelope.signatures) s.keyid = '';
    return bundle;
  }
}

/**
 * A PEM private key (PKCS#8, SEC1 or PKCS#1; an encrypted PKCS#8 key with its passphrase).
 * cosign's own key files ("ENCRYPTED SIGSTORE PRIVATE KEY") are a different format.
 */
export function readPrivateKey(pem: Buffer, passphrase?: string): crypto.KeyObject {
  const text = pem.toString('utf8');
  if (text.includes('SIGSTORE PRIVATE KEY'))
    throw new GateError(
      'SIGN_KEY_INVALID',
      "this is a cosign key file, in cosign's own encryption: gate reads a pem private key (pkcs#8, sec1 or pkcs#1), such as `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256` writes",
    );
  if (/-----BEGIN (RSA )?PUBLIC KEY-----/.test(text))
    throw new GateError('SIGN_KEY_INVALID', 'this is a public key: --key takes the private key');
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: text, format: 'pem', passphrase });
  } catch (err) {
    const encrypted = text.includes('ENCRYPTED');
    throw new GateError(
      'SIGN_KEY_INVALID',
      encrypted && !passphrase
        ? 'the key is encrypted: give its passphrase in GATE_KEY_PASSPHRASE'
        : `the key is not a pem private key gate can read (${(err as Error).message.toLowerCase()})`,
      { cause: err },
    );
  }
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'ed25519' && type !== 'rsa')
    throw new GateError('SIGN_KEY_INVALID', `a ${type} key cannot sign for sigstore`);
  return key;
}

/** The key id the gate reports for a signing key (cosign's hint form). */
export function keyIdOfPrivateKey(key: crypto.KeyObject): string {
  return keyIdOf(crypto.createPublicKey(key));
}

/** Whether a signer name is the identity a user wrote (a SAN, or a key id in either form). */
export function sameSigner(signer: string, written: string): boolean {
  return signer === written || signer === normaliseKeyId(written);
}

function keySigner(privateKey: crypto.KeyObject): Signer {
  const publicKey = crypto.createPublicKey(privateKey);
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const hint = keyIdOf(publicKey);
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  const digest =
    privateKey.asymmetricKeyType === 'ed25519'
      ? null
      : curve === 'secp384r1'
        ? 'sha384'
        : curve === 'secp521r1'
          ? 'sha512'
          : 'sha256';
  return {
    sign: async (data) => ({
      signature: crypto.sign(digest, data, privateKey),
      key: { $case: 'publicKey', publicKey: pem, hint },
    }),
  };
}

function signerName(sig: Signature): string {
  if (sig.key.$case === 'publicKey') return keyIdOf(crypto.createPublicKey(sig.key.publicKey));
  const san = X509Certificate.parse(sig.key.certificate).subjectAltName;
  return san ?? '';
}

const CODES: Record<InternalError['code'], GateErrorCode> = {
  IDENTITY_TOKEN_READ_ERROR: 'SIGN_NO_IDENTITY_TOKEN',
  IDENTITY_TOKEN_PARSE_ERROR: 'SIGN_IDENTITY_TOKEN_INVALID',
  CA_CREATE_SIGNING_CERTIFICATE_ERROR: 'SIGN_FULCIO_FAILED',
  TLOG_CREATE_ENTRY_ERROR: 'SIGN_REKOR_FAILED',
  TLOG_FETCH_ENTRY_ERROR: 'SIGN_REKOR_FAILED',
  TSA_CREATE_TIMESTAMP_ERROR: 'SIGN_TSA_FAILED',
};

/** sigstore-js's errors as coded ones; never the token (sigstore-js puts it in a message). */
function signingError(err: unknown, s: SigningServices): GateError {
  if (err instanceof GateError) return err;
  if (!(err instanceof InternalError)) {
    return new GateError(
      'SIGN_FAILED',
      `signing failed: ${String((err as Error)?.message ?? err)
        .split('\n')[0]!
        .toLowerCase()}`,
      {
        cause: err,
      },
    );
  }
  const code = CODES[err.code] ?? 'SIGN_FAILED';
  const cause = err.cause as { message?: string; code?: string; statusCode?: number } | undefined;
  if (code === 'SIGN_NO_IDENTITY_TOKEN') {
    return cause instanceof GateError
      ? cause
      : new GateError(code, `no identity token: ${String(cause?.message ?? cause ?? '')}`, {
          cause: err,
        });
  }
  if (code === 'SIGN_IDENTITY_TOKEN_INVALID')
    return new GateError(
      code,
      'the identity token is not a jwt with a subject (or a verified email)',
      { cause: err },
    );
  const where =
    code === 'SIGN_FULCIO_FAILED'
      ? `fulcio at ${s.fulcioURL ?? DEFAULT_FULCIO_URL}`
      : code === 'SIGN_REKOR_FAILED'
        ? `rekor at ${s.rekorURL ?? DEFAULT_REKOR_URL}`
        : `the timestamp authority at ${s.tsaURL}`;
  const why =
    cause?.statusCode !== undefined
      ? `refused: ${cause.message ?? cause.statusCode}`
      : `unreachable: ${String(cause?.code ?? cause?.message ?? 'no answer').toLowerCase()}`;
  return new GateError(code, `${where} ${why}`, { cause: err });
}
