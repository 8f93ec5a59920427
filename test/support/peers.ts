import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LocalSigstore } from './sigstore-services.js';

/**
 * Real peers the registry tests run as processes: cosign v3 and oras, built by `make test` into
 * .tools/bin (the Makefile's COSIGN and ORAS; the variables override them). Each runs with its
 * own HOME, so nothing is read from or written to the user's ~/.sigstore or ~/.docker, and
 * with no network beyond 127.0.0.1.
 */
const TOOLS = path.resolve(process.cwd(), '.tools/bin');
export const COSIGN = process.env.COSIGN ?? path.join(TOOLS, 'cosign');
export const ORAS = process.env.ORAS ?? path.join(TOOLS, 'oras');

export interface Peer {
  dir: string;
  run(args: string[], env?: Record<string, string>): Promise<{ stdout: string; stderr: string }>;
}

export function peer(bin: string): Peer {
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} not found: run \`make ${path.relative(process.cwd(), bin)}\` (make test does)`,
    );
  }
  const dir = mkdtempSync(path.join(tmpdir(), `gate-${path.basename(bin)}-`));
  return {
    dir,
    async run(args, env = {}) {
      try {
        return await promisify(execFile)(bin, args, {
          cwd: dir,
          timeout: 120_000,
          maxBuffer: 16 * 1024 * 1024,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            DOCKER_CONFIG: path.join(dir, '.docker'),
            TUF_ROOT: path.join(dir, '.sigstore'),
            ...env,
          },
        });
      } catch (err) {
        const e = err as Error & { stderr?: string; stdout?: string };
        throw new Error(
          `${path.basename(bin)} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`,
        );
      }
    },
  };
}

/**
 * cosign v3's signing flags against the local Sigstore services: the URL flags (deprecated in
 * v3, still supported with `--use-signing-config=false`), so no signing config file is needed.
 * The trusted root makes cosign check Fulcio's SCT and chain.
 */
export function cosignServices(svc: LocalSigstore, trustedRootFile: string): string[] {
  return [
    '--use-signing-config=false',
    '--rekor-url',
    svc.rekorURL,
    '--fulcio-url',
    svc.fulcioURL,
    '--trusted-root',
    trustedRootFile,
  ];
}

/**
 * An unsigned OIDC token file for the local Fulcio (it takes claims at face value, as a test
 * double). cosign proves possession by signing `sub`.
 */
export function identityTokenFile(dir: string, claims: { iss: string; sub: string }): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const token = `${part({ alg: 'none', typ: 'JWT' })}.${part({
    ...claims,
    aud: 'sigstore',
    iat: now,
    exp: now + 3600,
  })}.c2ln`;
  const file = path.join(dir, `token-${Math.random().toString(36).slice(2)}.jwt`);
  writeFileSync(file, token);
  return file;
}

/**
 * `cosign attest-blob` with a key: the predicate file as the given type, the bundle written to
 * `bundle`; `rekorUrl` is the Rekor log to write to, or `false` for none (--tlog-upload=false).
 */
export function attestBlobArgs(o: {
  predicate: string;
  type: string;
  bundle: string;
  artifact: string;
  rekorUrl: string | false;
}): string[] {
  const log = o.rekorUrl === false ? ['--tlog-upload=false'] : ['--rekor-url', o.rekorUrl];
  return [
    'attest-blob',
    '--yes',
    '--key',
    'cosign.key',
    '--predicate',
    o.predicate,
    '--type',
    o.type,
    '--bundle',
    o.bundle,
    '--use-signing-config=false',
    ...log,
    o.artifact,
  ];
}

/**
 * `cosign verify-blob-attestation` offline with a key: the bundle of the given type about the
 * artifact file, checked against the trusted root file.
 */
export function verifyBlobAttestationArgs(o: {
  bundle: string;
  type: string;
  artifact?: string;
  key?: string;
  trustedRoot?: string;
}): string[] {
  return [
    'verify-blob-attestation',
    ...['--key', o.key ?? 'cosign.pub', '--bundle', o.bundle],
    ...['--trusted-root', o.trustedRoot ?? 'trusted_root.json', '--type', o.type],
    o.artifact ?? 'artifact.txt',
  ];
}

/** `cosign trusted-root create` for a Rekor log whose key is in rekor.pub, written to `out`. */
export function trustedRootArgs(rekorUrl: string, out = 'trusted_root.json'): string[] {
  return [
    'trusted-root',
    'create',
    '--rekor',
    `url=${rekorUrl},public-key=rekor.pub,start-time=2020-01-01T00:00:00Z`,
    '--out',
    out,
  ];
}
