import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  readPrivateKey,
  sameSigner,
  keyIdOfPrivateKey,
  signPayload,
  tokenFromBrowser,
  tokenFromEnvironment,
  openerFor,
  DEFAULT_OIDC_CLIENT_ID,
  DEFAULT_OIDC_ISSUER,
  type SignedPayload,
  type SigningIdentity,
} from '../../api/breakglass-sign.js';
import { GateError } from '../../errors.js';
import { readBoundedFile } from '../../util/input.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import { writeRequest, type BreakGlassRequestCommandOptions } from './break-glass.js';

/** How to sign: shared by `request --sign` and `approve`. */
export interface SigningCommandOptions {
  /** a PEM private key; keyless (Fulcio) without it */
  key?: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  tsaUrl?: string;
  oidcIssuer?: string;
  oidcClientId?: string;
  /** sign in through the browser even when not at a terminal */
  browser?: boolean;
  /** where to write the bundle */
  bundle?: string;
}

export interface SignedRequestCommandOptions
  extends BreakGlassRequestCommandOptions, SigningCommandOptions {
  sign?: boolean;
}

/**
 * The signer: a key from --key (its passphrase, if encrypted, from GATE_KEY_PASSPHRASE), else
 * keyless with a token from the environment (SIGSTORE_ID_TOKEN, GitHub Actions), else the
 * browser sign-in (with --browser, or at a terminal). The token is asked for only when Fulcio is.
 */
export function signingIdentity(o: SigningCommandOptions, io: CommandIO): SigningIdentity {
  const env = io.env ?? process.env;
  if (o.key) {
    const bytes = readBoundedFile(path.resolve(io.cwd, o.key), 64 * 1024, 'key');
    return { kind: 'key', privateKey: readPrivateKey(bytes, env.GATE_KEY_PASSPHRASE) };
  }
  const interactive = Boolean(process.stdin.isTTY) && !env.CI;
  return {
    kind: 'keyless',
    token: async () => {
      const token = await tokenFromEnvironment(env);
      if (token) return token;
      if (o.browser || interactive) {
        return tokenFromBrowser({
          issuer: o.oidcIssuer ?? DEFAULT_OIDC_ISSUER,
          clientId: o.oidcClientId ?? DEFAULT_OIDC_CLIENT_ID,
          open: openerFor(env, interactive),
          tell: (line) => io.stderr(`${line}\n`),
        });
      }
      throw new GateError(
        'SIGN_NO_IDENTITY_TOKEN',
        'no identity token: set SIGSTORE_ID_TOKEN, run in github actions with `permissions: id-token: write`, sign in with --browser, or sign with --key FILE',
      );
    },
  };
}

export function servicesOf(o: SigningCommandOptions) {
  return {
    ...(o.fulcioUrl ? { fulcioURL: o.fulcioUrl } : {}),
    ...(o.rekorUrl ? { rekorURL: o.rekorUrl } : {}),
    ...(o.tsaUrl ? { tsaURL: o.tsaUrl } : {}),
  };
}

export function writeBundle(file: string, signed: SignedPayload, flag = 'w'): void {
  try {
    writeFileSync(file, `${JSON.stringify(signed.bundle)}\n`, { flag });
  } catch (err) {
    throw new GateError('INPUT_UNREADABLE', `cannot write ${file}`, { cause: err });
  }
}

/** What the log and the TSA said, for the user to see that the signature has a time. */
export function witnessed(signed: SignedPayload): string {
  const vm = signed.bundle.verificationMaterial;
  const entry = vm.tlogEntries[0];
  const stamps = vm.timestampVerificationData?.rfc3161Timestamps?.length ?? 0;
  const parts = [
    entry
      ? `rekor log index ${entry.logIndex}, integrated ${new Date(Number(entry.integratedTime) * 1000).toISOString()}`
      : undefined,
    stamps ? `${stamps} rfc 3161 timestamp${stamps > 1 ? 's' : ''}` : undefined,
  ].filter(Boolean);
  return parts.join(', ');
}

/**
 * `gate break-glass request --sign`: writes the statement as `request` does, then signs its
 * bytes (the file as written) and writes the bundle, by default beside it as
 * NAME.sigstore.json. The signer must be the requester the statement names, checked before
 * anything is logged: the gate would refuse a request signed by anyone else.
 */
export async function breakGlassSignedRequestCommand(
  o: SignedRequestCommandOptions,
  io: CommandIO,
  now = new Date(),
): Promise<number> {
  try {
    if (!o.sign) throw new GateError('USAGE_ERROR', 'signing options need --sign');
    const identity = signingIdentity(o, io);
    if (identity.kind === 'key') {
      const id = keyIdOfPrivateKey(identity.privateKey);
      if (!sameSigner(id, o.requester)) throw mismatch(id, o.requester);
    }
    const { statement, out, payload } = writeRequest(o, io.cwd, now);
    const bundleFile = path.resolve(
      io.cwd,
      o.bundle ?? out.replace(/(\.json)?$/, '.sigstore.json'),
    );
    const signed = await signPayload(payload, {
      identity,
      services: servicesOf(o),
      checkSigner: (signer) => {
        if (!sameSigner(signer, o.requester)) throw mismatch(signer, o.requester);
      },
    });
    writeBundle(bundleFile, signed);
    const base = path.relative(io.cwd, out) || out;
    io.stdout(
      [
        `wrote ${out} (request ${statement.predicate.requestId}, expires ${statement.predicate.expiresAt})`,
        `signed as ${signed.signer}: ${bundleFile} (${witnessed(signed)})`,
        'co-signers approve the same statement, each writing a bundle:',
        `  gate break-glass approve ${base}`,
        'pass every bundle to the gate, each with its own --break-glass.',
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io);
  }
}

function mismatch(signer: string, requester: string): GateError {
  return new GateError(
    'SIGN_SIGNER_MISMATCH',
    `you sign as ${signer} but the request names ${requester} as its requester, which the gate would refuse: give --requester ${signer}`,
  );
}
