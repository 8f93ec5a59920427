import { existsSync } from 'node:fs';
import path from 'node:path';
import { GateError } from '../../errors.js';
import { readBoundedFile, MAX_DOCUMENT_BYTES } from '../../util/input.js';
import {
  attestationOf,
  loadTrustedRoot,
  type ArtifactInput,
  verifyBundle,
} from '../../api/verify.js';
import { EXIT, reportError, type CommandIO } from '../io.js';

export interface VerifyBundleCommandOptions {
  bundle: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  key?: string;
  trustedRoot?: string;
  staging?: boolean;
  json?: boolean;
}

/** Largest artifact hashed from disk by verify-bundle. */
const MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024;

/**
 * `gate verify-bundle`: the sigstore-conformance CLI protocol. Exit 0 when verified, 1 when the
 * bundle does not verify, 2 when the command cannot run (usage, unreadable files, trust root).
 */
export function verifyBundleCommand(
  target: string,
  opts: VerifyBundleCommandOptions,
  io: CommandIO,
): number {
  try {
    if (opts.staging) {
      throw new GateError(
        'TRUST_ROOT_UNAVAILABLE',
        '--staging needs the staging trusted root from tuf, which is unreachable offline: pass --trusted-root with the staging root',
      );
    }
    const resolve = (p: string) => path.resolve(io.cwd, p);
    const trust = loadTrustedRoot(opts.trustedRoot ? resolve(opts.trustedRoot) : undefined);
    const keyed = opts.key !== undefined;
    const identities = keyed ? undefined : identityRules(opts);
    const keys = keyed
      ? [{ pem: readBoundedFile(resolve(opts.key!), 64 * 1024, 'key').toString('utf8') }]
      : undefined;
    const artifact = artifactInput(target, io.cwd);
    const bytes = readBoundedFile(resolve(opts.bundle), MAX_DOCUMENT_BYTES, 'bundle');
    const verified = verifyBundle(bytes, { trust, artifact, identities, keys });
    // A DSSE bundle is about its statement's subjects: the artifact must be one of them, and an
    // envelope that is not an in-toto statement cannot be tied to the artifact at all.
    const statement =
      verified.contentType === 'dsse' ? attestationOf(verified, artifact).statement : undefined;
    const summary = { ...verified, payload: undefined, statement };
    io.stdout(
      opts.json
        ? `${JSON.stringify(summary, null, 2)}\n`
        : `verified: ${describeSigner(summary.signer)}\n`,
    );
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io);
  }
}

function identityRules(opts: VerifyBundleCommandOptions) {
  const {
    certificateIdentity: san,
    certificateIdentityRegexp: sanRegExp,
    certificateOidcIssuer: issuer,
  } = opts;
  if (!issuer || (san === undefined && sanRegExp === undefined)) {
    throw new GateError(
      'USAGE_ERROR',
      'give --certificate-identity (or --certificate-identity-regexp) with --certificate-oidc-issuer, or --key',
    );
  }
  return [san !== undefined ? { san, issuer } : { sanRegExp: sanRegExp!, issuer }];
}

const DIGEST_ARG = /^sha256:[0-9a-fA-F]{64}$/;

/** The protocol's FILE_OR_DIGEST: a digest only when it looks like one and is not a file. */
export function artifactInput(target: string, cwd: string): ArtifactInput {
  const file = path.resolve(cwd, target);
  if (DIGEST_ARG.test(target) && !existsSync(file)) {
    return { digest: { algorithm: 'sha256', hex: target.slice('sha256:'.length).toLowerCase() } };
  }
  return { bytes: readBoundedFile(file, MAX_ARTIFACT_BYTES, 'artifact') };
}

function describeSigner(signer: {
  kind: string;
  identity?: string;
  issuer?: string;
  keyId?: string;
}): string {
  return signer.kind === 'key'
    ? `key ${signer.keyId}`
    : `${signer.identity} (issuer ${signer.issuer})`;
}
