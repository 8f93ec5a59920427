import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { keyIdOf } from '../../src/verify/key-id.js';
import { VSA_PREDICATE_TYPE } from '../../src/vsa.js';
import {
  attestBlobArgs,
  COSIGN,
  cosignServices,
  identityTokenFile,
  peer,
  trustedRootArgs,
  type Peer,
} from '../support/peers.js';
import { startRealRekor, type RealRekor } from '../support/rekor-peer.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The README's cosign commands (break glass, verification summary) are the ones this file runs,
 * read from README.md as written (issue 13): the real cosign v3 and the real Rekor v1 log. Only
 * placeholders are filled in (HEX, the Rekor URL), and the keyless command, which would sign with
 * the public-good Fulcio and Rekor, is pointed at the local Sigstore services by the flags that
 * do so; nothing else is added. The last test fails if the README shows a cosign command no
 * test here ran.
 */
const CLI = packagePath('dist', 'cli', 'main.js');
const POLICY = packagePath('test', 'fixtures', 'policies', 'requires-provenance');
const ARTIFACT = 'promoted artifact\n';
const HEX = createHash('sha256').update(ARTIFACT).digest('hex');
// the fix that must ship at 3 a.m.: no provenance, so only break glass lets it through
const HOTFIX = createHash('sha256').update('hotfix artifact\n').digest('hex');
const README_REKOR = 'https://rekor.acme.example';
const ONCALL = { iss: 'https://oidc.acme.example', sub: 'oncall@acme.example' };
const ENV = { COSIGN_PASSWORD: 'correct horse' };

interface ReadmeCommand {
  text: string;
  args: string[];
  ran: boolean;
}

/** Every `cosign ...` command in the README's sh blocks, continuation lines joined. */
function readmeCosignCommands(): ReadmeCommand[] {
  const readme = readFileSync(packagePath('README.md'), 'utf8');
  const commands: ReadmeCommand[] = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block[1]!.replace(/\s*\\\n\s*/g, ' ').split('\n');
    for (const line of lines) {
      const text = line.replace(/\s+#.*$/, '').trim();
      if (!text.startsWith('cosign ')) continue;
      if (/['"$`]/.test(text)) throw new Error(`quote or expansion in a README command: ${text}`);
      commands.push({ text, args: text.split(/\s+/).slice(1), ran: false });
    }
  }
  return commands;
}

const commands = readmeCosignCommands();

/** The README command that contains every one of `parts`, marked as run. */
function readmeCommand(...parts: string[]): string[] {
  const found = commands.filter((c) => parts.every((p) => c.text.includes(p)));
  if (found.length !== 1) {
    throw new Error(`${found.length} README cosign commands contain ${parts.join(' and ')}`);
  }
  found[0]!.ran = true;
  return found[0]!.args.map((a) => a.replaceAll(README_REKOR, rekor.url).replaceAll('HEX', HEX));
}

let rekor: RealRekor;
let svc: LocalSigstore;
let cosign: Peer;
let leadKeyHex: string;

beforeAll(async () => {
  [rekor, svc] = await Promise.all([startRealRekor(), startLocalSigstore()]);
  cosign = peer(COSIGN);
  const at = (f: string) => path.join(cosign.dir, f);
  await cosign.run(['generate-key-pair'], ENV); // the build's key: cosign.key
  await cosign.run(['generate-key-pair', '--output-key-prefix', 'lead'], ENV);
  leadKeyHex = createHash('sha256')
    .update(createPublicKey(readFileSync(at('lead.pub'))).export({ format: 'der', type: 'spki' }))
    .digest('hex');
  // the gate's own key, which signs verification summaries
  const gateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(at('gate.key'), gateKey.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(at('gate.pub'), gateKey.publicKey.export({ format: 'pem', type: 'spki' }));
  // trust: the local services (keyless) and the organisation's Rekor, one root per line
  writeFileSync(at('local_root.json'), JSON.stringify(svc.trustedRoot));
  writeFileSync(at('rekor.pub'), rekor.publicKeyPem);
  await cosign.run(trustedRootArgs(rekor.url, 'rekor_root.json'));
  writeFileSync(
    at('trusted_root.jsonl'),
    [svc.trustedRoot, JSON.parse(readFileSync(at('rekor_root.json'), 'utf8'))]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  writeFileSync(at('artifact.txt'), ARTIFACT);
  writeFileSync(
    at('provenance.json'),
    JSON.stringify({ buildDefinition: { buildType: 'https://example.com/build/v1' } }),
  );
  mkdirSync(at('evidence'));
  await cosign.run(
    attestBlobArgs({
      predicate: 'provenance.json',
      type: 'https://slsa.dev/provenance/v1',
      bundle: 'evidence/provenance.sigstore.json',
      artifact: 'artifact.txt',
      rekorUrl: rekor.url,
    }),
    ENV,
  );
  writeGateYaml();
}, 240_000);
afterAll(async () => {
  await Promise.all([rekor?.stop(), svc?.close()]);
});

function writeGateYaml(o: { evidence?: string; gateKey?: string } = {}): void {
  writeFileSync(
    path.join(cosign.dir, 'gate.yaml'),
    `trustedRoot: trusted_root.jsonl
keys: [{ path: cosign.pub }, { path: lead.pub }, ${o.gateKey ?? '{ path: gate.pub, transparency: optional }'}]
sources: { bundles: [${o.evidence ?? 'evidence'}] }
ledger: { path: ledger.db }
vsa: { key: gate.key, policyUri: https://gate.acme.example/policies }
policy:
  path: ${POLICY}
  config:
    vsa: { verifier_id: https://gate.acme.example/gate }
    break_glass:
      environments:
        production:
          requesters: [{ san: ${ONCALL.sub}, issuer: '${ONCALL.iss}' }]
          approvers: [{ key_id: ${leadKeyHex} }]   # the hex form of the lead's key id
          approvals: 1
          max_expiry_minutes: 120
`,
  );
}

async function gate(args: string[]): Promise<{ code: number; stdout: string; decision?: any }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      cwd: cosign.dir,
    });
    return { code: 0, stdout, decision: parseJson(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: `${e.stdout}${e.stderr}`, decision: parseJson(e.stdout) };
  }
}

const parseJson = (s: string) => {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
};

const check = (hex: string, extra: string[] = []) =>
  gate([
    ...['check', '--config', 'gate.yaml', '--subject', `sha256:${hex}`, '--env', 'production'],
    ...['--format', 'json', ...extra],
  ]);

describe('the README’s break-glass commands, with the real cosign and a real Rekor', () => {
  it('the requester signs keyless and the lead co-signs with a key logged in Rekor: an override', async () => {
    const request = await gate([
      ...['break-glass', 'request', '--subject', `sha256:${HOTFIX}`, '--env', 'production'],
      ...['--ticket', 'INC-4711', '--justification', 'checkout is down, the fix must ship now'],
      ...['--requester', ONCALL.sub, '--expires-in', '60', '--out', 'request.json'],
    ]);
    expect(request.code).toBe(0);
    await cosign.run([
      ...readmeCommand('--bundle oncall.sigstore.json'),
      // the flags that point cosign at the local services instead of the public-good instance
      ...cosignServices(svc, path.join(cosign.dir, 'local_root.json')),
      ...['--identity-token', identityTokenFile(cosign.dir, ONCALL)],
    ]);
    await cosign.run(readmeCommand('--bundle lead.sigstore.json', '--key lead.key'), ENV);
    const lead = JSON.parse(readFileSync(path.join(cosign.dir, 'lead.sigstore.json'), 'utf8'));
    expect(lead.verificationMaterial.tlogEntries).toHaveLength(1);

    const denied = await check(HOTFIX);
    expect(denied.decision.outcome).toBe('deny');
    const { code, decision } = await check(HOTFIX, [
      ...['--break-glass', 'oncall.sigstore.json', '--break-glass', 'lead.sigstore.json'],
    ]);
    expect(decision.breakGlassRefused).toBeUndefined();
    expect(decision.outcome).toBe('override');
    expect(code).toBe(0);
    expect(decision.override).toMatchObject({
      requester: ONCALL.sub,
      ticket: 'INC-4711',
      signers: expect.arrayContaining([
        ONCALL.sub,
        keyIdOf(createPublicKey(readFileSync(path.join(cosign.dir, 'lead.pub')))),
      ]),
    });
  });

  it('a co-signature made without a log entry gives the request no approval: it is refused, not counted', async () => {
    await cosign.run(
      [
        ...['attest-blob', '--statement', 'request.json', '--bundle', 'unlogged.sigstore.json'],
        ...['--yes', '--key', 'lead.key', '--use-signing-config=false', '--tlog-upload=false'],
      ],
      ENV,
    );
    const { decision } = await check(HOTFIX, [
      ...['--break-glass', 'oncall.sigstore.json', '--break-glass', 'unlogged.sigstore.json'],
    ]);
    expect(decision.outcome).toBe('deny');
    expect(decision.breakGlassRefused).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          code: 'BREAK_GLASS_INVALID',
          message: expect.stringMatching(/^TIMESTAMP_INVALID/),
        }),
        expect.objectContaining({ code: 'BREAK_GLASS_APPROVALS_MISSING' }),
      ]),
    );
  });
});

describe('the README’s verification summary command, with the real cosign', () => {
  it('cosign verifies the summary gate check --vsa wrote, as it is', async () => {
    const { code, decision } = await check(HEX, ['--vsa', 'staging.vsa.json']);
    expect(decision.outcome).toBe('allow');
    expect(code).toBe(0);
    const { stderr } = await cosign.run(
      readmeCommand('verify-blob-attestation', 'staging.vsa.json'),
    );
    expect(stderr).toMatch(/Verified OK/);
    const vsa = JSON.parse(readFileSync(path.join(cosign.dir, 'staging.vsa.json'), 'utf8'));
    const statement = JSON.parse(Buffer.from(vsa.dsseEnvelope.payload, 'base64').toString());
    expect(statement.predicate.inputAttestations).toEqual([
      {
        uri: decision.evidence[0].source,
        digest: {
          sha256: createHash('sha256')
            .update(readFileSync(path.join(cosign.dir, 'evidence', 'provenance.sigstore.json')))
            .digest('hex'),
        },
      },
    ]);
  });

  it('cosign and the gate both refuse a summary whose statement was changed', async () => {
    const vsa = JSON.parse(readFileSync(path.join(cosign.dir, 'staging.vsa.json'), 'utf8'));
    const statement = JSON.parse(Buffer.from(vsa.dsseEnvelope.payload, 'base64').toString());
    // a summary made to look fresh: promotion measures its age by timeVerified
    statement.predicate.timeVerified = '2099-01-01T00:00:00.000Z';
    vsa.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    mkdirSync(path.join(cosign.dir, 'tampered'), { recursive: true });
    writeFileSync(path.join(cosign.dir, 'tampered', 'vsa.json'), JSON.stringify(vsa));
    await expect(
      cosign.run(
        readmeCommand('verify-blob-attestation', 'staging.vsa.json').map((a) =>
          a === 'staging.vsa.json' ? 'tampered/vsa.json' : a,
        ),
      ),
    ).rejects.toThrow(/failed/);
    writeGateYaml({ evidence: 'tampered' });
    try {
      const { decision } = await check(HEX);
      expect(decision.evidence).toMatchObject([{ status: 'rejected', code: 'SIGNATURE_INVALID' }]);
    } finally {
      writeGateYaml();
    }
  });

  it('the next environment takes the summary as evidence from a key declared transparency: optional, and not otherwise', async () => {
    mkdirSync(path.join(cosign.dir, 'promotion'), { recursive: true });
    copyFileSync(
      path.join(cosign.dir, 'staging.vsa.json'),
      path.join(cosign.dir, 'promotion', 'staging.vsa.json'),
    );
    try {
      writeGateYaml({ evidence: 'promotion' });
      const taken = (await check(HEX)).decision;
      expect(taken.evidence).toMatchObject([
        {
          status: 'verified',
          predicateType: VSA_PREDICATE_TYPE,
          signer: { kind: 'key' },
          timeSource: 'none',
        },
      ]);
      writeGateYaml({ evidence: 'promotion', gateKey: '{ path: gate.pub }' });
      const refused = (await check(HEX)).decision;
      expect(refused.evidence).toMatchObject([{ status: 'rejected', code: 'TIMESTAMP_INVALID' }]);
    } finally {
      writeGateYaml();
    }
  });
});

describe('README.md', () => {
  it('shows no cosign command that a test here did not run', () => {
    expect(commands.length).toBeGreaterThanOrEqual(3);
    expect(commands.filter((c) => !c.ran).map((c) => c.text)).toEqual([]);
  });
});
