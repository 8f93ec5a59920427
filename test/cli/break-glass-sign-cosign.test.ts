import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/program.js';
import { keyIdOf } from '../../src/verify/key-id.js';
import { FIXTURES } from '../helpers.js';
import { COSIGN, cosignServices, identityTokenFile, peer, type Peer } from '../support/peers.js';
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
  ...['break-glass', 'request', '--subject', `artifact.txt=sha256:${HEX}`],
  ...['--env', 'production', '--ticket', 'INC-4711'],
  ...['--justification', 'checkout is down, the fix must ship now'],
  ...['--requester', requester, '--out', out, '--sign', ...local()],
];

const HEX = createHash('sha256').update('hotfix artifact\n').digest('hex');

beforeAll(async () => {
  svc = await startLocalSigstore();
  cosign = peer(COSIGN);
  writeFileSync(at('artifact.txt'), 'hotfix artifact\n');
  writeFileSync(at('other.txt'), 'another artifact\n');
  writeFileSync(at('trusted_root.json'), JSON.stringify(svc.trustedRoot));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(at('oncall.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(at('oncall.pub'), publicKey.export({ format: 'pem', type: 'spki' }));
  writeFileSync(
    at('gate.yaml'),
    `trustedRoot: trusted_root.json
ledger: { path: ledger.db }
policy:
  path: ${path.join(FIXTURES, 'policies', 'requires-provenance')}
  config:
    break_glass:
      environments:
        production:
          requesters: [{ san: ${ONCALL.sub}, issuer: '${ONCALL.iss}' }]
          approvers: [{ san: ${LEAD.sub}, issuer: '${LEAD.iss}' }]
          approvals: 1
          max_expiry_minutes: 120
`,
  );
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
    const id = keyIdOf(createPublicKey(readFileSync(at('oncall.pub'))));
    const r = await gate([...request('keyed.json', id), '--key', 'oncall.key']);
    expect(r.stderr).toBe('');
    const { stderr } = await verify('keyed.sigstore.json', ['--key', 'oncall.pub']);
    expect(stderr).toMatch(/Verified OK/);
  }, 120_000);
});

describe('a request cosign signed, approved with gate', () => {
  it('cosign attest-blob --statement signs the file as written, so gate approve co-signs the same bytes', async () => {
    const r = await gate([
      ...['break-glass', 'request', '--subject', `sha256:${HEX}`, '--env', 'production'],
      ...['--ticket', 'INC-4711', '--justification', 'checkout is down, the fix must ship now'],
      ...['--requester', ONCALL.sub, '--out', 'cosigned.json'],
    ]);
    expect(r.code).toBe(0);
    await cosign.run([
      ...['attest-blob', '--statement', 'cosigned.json', '--bundle', 'oncall.sigstore.json'],
      ...['--yes', ...cosignServices(svc, at('trusted_root.json'))],
      ...['--identity-token', identityTokenFile(cosign.dir, ONCALL)],
    ]);
    const a = await gate(['break-glass', 'approve', 'cosigned.json', ...local()], {
      SIGSTORE_ID_TOKEN: token(LEAD),
    });
    expect(a.stderr).toBe('');
    const c = await gate([
      ...['check', '--config', 'gate.yaml', '--subject', `sha256:${HEX}`, '--env', 'production'],
      ...['--format', 'json', '--break-glass', 'oncall.sigstore.json'],
      ...['--break-glass', 'cosigned.approval.sigstore.json'],
    ]);
    const decision = JSON.parse(c.stdout);
    expect(decision.breakGlassRefused).toBeUndefined();
    expect(decision.outcome).toBe('override');
    expect(decision.override.signers).toEqual([ONCALL.sub, LEAD.sub]);
  }, 120_000);
});

describe("cosign's own key file", () => {
  it('is refused with a coded line saying what gate reads instead', async () => {
    await cosign.run(['generate-key-pair', '--output-key-prefix', 'cosigned'], {
      COSIGN_PASSWORD: 'correct horse',
    });
    const r = await gate([...request('cosign-key.json', ONCALL.sub), '--key', 'cosigned.key']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^gate: SIGN_KEY_INVALID: this is a cosign key file, in cosign's own encryption: gate reads a pem private key/,
    );
  }, 60_000);
});
