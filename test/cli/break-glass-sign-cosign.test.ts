import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/program.js';
import { COSIGN, identityTokenFile, peer, type Peer } from '../support/peers.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The bundles `gate break-glass request --sign` and `approve` write are ordinary Sigstore
 * bundles: the real cosign v3 (built into .tools/bin by make test) verifies them offline with the
 * local services' trusted root, keyless by identity and key-signed by the public key, against
 * the artifact the request names; and refuses them for another identity or another artifact.
 */
const ONCALL = { iss: 'https://oidc.acme.example', sub: 'oncall@acme.example' };
const LEAD = { iss: 'https://oidc.acme.example', sub: 'lead@acme.example' };
const BG_TYPE = 'https://gate.dev/attestation/break-glass/v1';

let svc: LocalSigstore;
let cosign: Peer;

const at = (f: string) => path.join(cosign.dir, f);

async function gate(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    cwd: cosign.dir,
    env,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

const token = (who: { iss: string; sub: string }) =>
  readFileSync(identityTokenFile(cosign.dir, who), 'utf8');
const local = () => ['--fulcio-url', svc.fulcioURL, '--rekor-url', svc.rekorURL];
const request = (out: string, requester: string) => [
  ...['break-glass', 'request', '--subject', `artifact.txt=sha256:${digest()}`],
  ...['--env', 'production', '--ticket', 'INC-4711'],
  ...['--justification', 'checkout is down, the fix must ship now'],
  ...['--requester', requester, '--out', out, '--sign', ...local()],
];

let artifactHex = '';
const digest = () => artifactHex;

beforeAll(async () => {
  svc = await startLocalSigstore();
  cosign = peer(COSIGN);
  writeFileSync(at('artifact.txt'), 'hotfix artifact\n');
  artifactHex = (await import('node:crypto'))
    .createHash('sha256')
    .update('hotfix artifact\n')
    .digest('hex');
  writeFileSync(at('other.txt'), 'another artifact\n');
  writeFileSync(at('trusted_root.json'), JSON.stringify(svc.trustedRoot));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(at('oncall.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(at('oncall.pub'), publicKey.export({ format: 'pem', type: 'spki' }));
}, 60_000);
afterAll(() => svc?.close());

const verify = (bundle: string, by: string[], artifact = 'artifact.txt') =>
  cosign.run([
    ...['verify-blob-attestation', '--bundle', bundle, '--trusted-root', 'trusted_root.json'],
    ...['--type', BG_TYPE, ...by, artifact],
  ]);
const identity = (who: { iss: string; sub: string }) => [
  ...['--certificate-identity', who.sub, '--certificate-oidc-issuer', who.iss],
];

describe('cosign verify-blob-attestation on the bundles gate signs', () => {
  it('verifies a keyless request and its approval by their identities', async () => {
    const r = await gate(request('request.json', ONCALL.sub), { SIGSTORE_ID_TOKEN: token(ONCALL) });
    expect(r.stderr).toBe('');
    const a = await gate(['break-glass', 'approve', 'request.json', ...local()], {
      SIGSTORE_ID_TOKEN: token(LEAD),
    });
    expect(a.stderr).toBe('');
    expect((await verify('request.sigstore.json', identity(ONCALL))).stderr).toMatch(/Verified OK/);
    expect((await verify('request.approval.sigstore.json', identity(LEAD))).stderr).toMatch(
      /Verified OK/,
    );
    // not the lead's request, and not about another artifact
    await expect(verify('request.sigstore.json', identity(LEAD))).rejects.toThrow(/failed/);
    await expect(verify('request.sigstore.json', identity(ONCALL), 'other.txt')).rejects.toThrow(
      /failed/,
    );
  }, 120_000);

  it('verifies a key-signed request, logged in rekor, with the public key', async () => {
    const { createPublicKey } = await import('node:crypto');
    const { keyIdOf } = await import('../../src/verify/key-id.js');
    const id = keyIdOf(createPublicKey(readFileSync(at('oncall.pub'))));
    const r = await gate([...request('keyed.json', id), '--key', 'oncall.key']);
    expect(r.stderr).toBe('');
    const { stderr } = await verify('keyed.sigstore.json', ['--key', 'oncall.pub']);
    expect(stderr).toMatch(/Verified OK/);
  }, 120_000);
});
