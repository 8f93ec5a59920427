import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/program.js';
import { loadConfig } from '../../src/config.js';
import { createGate } from '../../src/gate.js';
import { createServer as createGateServer } from '../../src/server/app.js';
import { keyIdOf } from '../../src/verify/key-id.js';
import { packagePath } from '../../src/util/paths.js';
import { FIXTURES } from '../helpers.js';
import { identityTokenFile } from '../support/peers.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * `gate break-glass request --sign` and `gate break-glass approve` through the CLI's own entry
 * (`run(argv, io)`), signing with sigstore-js against the local Fulcio, Rekor and TSA over real
 * HTTP on 127.0.0.1; then `gate check --break-glass` decides on the bundles they wrote.
 */
const ONCALL = { iss: 'https://oidc.acme.example', sub: 'oncall@acme.example' };
const LEAD = { iss: 'https://oidc.acme.example', sub: 'lead@acme.example' };
const BG_TYPE = 'https://gate.dev/attestation/break-glass/v1';
const ARTIFACT = 'hotfix artifact\n';
const HEX = createHash('sha256').update(ARTIFACT).digest('hex');

let svc: LocalSigstore;
let dir: string;
let keyHex: string;
let keyId: string;

const token = (claims: { iss: string; sub: string }) =>
  readFileSync(identityTokenFile(dir, claims), 'utf8');

async function gate(args: string[], env: Record<string, string> = {}, cwd = dir) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    cwd,
    env,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

/** The services flags every signing command here takes: the local instance, not public-good. */
const local = () => ['--fulcio-url', svc.fulcioURL, '--rekor-url', svc.rekorURL];

const request = (out: string, requester: string, env = 'production') => [
  ...['break-glass', 'request', '--subject', `sha256:${HEX}`, '--env', env],
  ...['--ticket', 'INC-4711', '--justification', 'checkout is down, the fix must ship now'],
  ...['--requester', requester, '--expires-in', '60', '--out', out],
];

async function check(env: string, bundles: string[]) {
  const r = await gate([
    ...['check', '--config', 'gate.yaml', '--subject', `sha256:${HEX}`, '--env', env],
    ...['--format', 'json', ...bundles.flatMap((b) => ['--break-glass', b])],
  ]);
  return { ...r, decision: JSON.parse(r.stdout) };
}

const read = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
const payloadOf = (f: string) => Buffer.from(read(f).dsseEnvelope.payload, 'base64');

beforeAll(async () => {
  svc = await startLocalSigstore();
  dir = mkdtempSync(path.join(tmpdir(), 'gate-bg-sign-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(path.join(dir, 'oncall.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(path.join(dir, 'oncall.pub'), publicKey.export({ format: 'pem', type: 'spki' }));
  keyId = keyIdOf(publicKey);
  keyHex = Buffer.from(keyId, 'base64').toString('hex');
  writeFileSync(path.join(dir, 'trusted_root.json'), JSON.stringify(svc.trustedRoot));
  writeFileSync(path.join(dir, 'artifact.txt'), ARTIFACT);
  writeFileSync(
    path.join(dir, 'gate.yaml'),
    `trustedRoot: trusted_root.json
keys: [{ path: oncall.pub }]
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
        staging:
          requesters: [{ key_id: ${keyHex} }]
          max_expiry_minutes: 120
`,
  );
});
afterAll(() => svc?.close());

describe('gate break-glass request --sign, keyless with a token from the environment', () => {
  it('signs the statement as written, and the gate checks the signer against policy data', async () => {
    const r = await gate([...request('request.json', ONCALL.sub), '--sign', ...local()], {
      SIGSTORE_ID_TOKEN: token(ONCALL),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `signed as ${ONCALL.sub}: ${path.join(dir, 'request.sigstore.json')}`,
    );
    expect(r.stdout).toMatch(/rekor log index \d+, integrated /);
    const bundle = read('request.sigstore.json');
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.verificationMaterial.certificate.rawBytes).toBeTruthy();
    expect(bundle.verificationMaterial.tlogEntries[0].kindVersion.kind).toBe('dsse');
    // the exact bytes of request.json are the payload
    expect(payloadOf('request.sigstore.json')).toEqual(
      readFileSync(path.join(dir, 'request.json')),
    );

    // signed by an allowed requester, but production wants one approver
    const alone = await check('production', ['request.sigstore.json']);
    expect(alone.decision.outcome).toBe('deny');
    expect(alone.decision.breakGlassRefused.map((x: { code: string }) => x.code)).toEqual([
      'BREAK_GLASS_APPROVALS_MISSING',
    ]);
  });

  it('approve by a second identity co-signs the same bytes: the approvals are met, an override', async () => {
    const a = await gate(['break-glass', 'approve', 'request.json', ...local()], {
      SIGSTORE_ID_TOKEN: token(LEAD),
    });
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(
      /^approving request [0-9a-f-]{36} for production, requested by oncall@/,
    );
    expect(a.stdout).toContain('justification: checkout is down, the fix must ship now');
    expect(a.stdout).toContain(`subject: sha256:${HEX}`);
    expect(a.stdout).toContain(
      `approved as ${LEAD.sub}: ${path.join(dir, 'request.approval.sigstore.json')}`,
    );
    expect(payloadOf('request.approval.sigstore.json')).toEqual(payloadOf('request.sigstore.json'));

    const both = await check('production', [
      'request.sigstore.json',
      'request.approval.sigstore.json',
    ]);
    expect(both.decision.breakGlassRefused).toBeUndefined();
    expect(both.decision.outcome).toBe('override');
    expect(both.code).toBe(0);
    expect(both.decision.override).toMatchObject({
      requester: ONCALL.sub,
      ticket: 'INC-4711',
      signers: [ONCALL.sub, LEAD.sub],
    });
  });

  it('approve takes the request bundle too (its payload as signed), and never overwrites an approval', async () => {
    const r = await gate([...request('second.json', ONCALL.sub), '--sign', ...local()], {
      SIGSTORE_ID_TOKEN: token(ONCALL),
    });
    expect(r.code).toBe(0);
    for (const n of [1, 2]) {
      const a = await gate(['break-glass', 'approve', 'second.sigstore.json', ...local()], {
        SIGSTORE_ID_TOKEN: token(LEAD),
      });
      expect(a.stderr).toBe('');
      const name = n === 1 ? 'second.approval.sigstore.json' : 'second.approval-2.sigstore.json';
      expect(a.stdout).toContain(path.join(dir, name));
      expect(payloadOf(name)).toEqual(readFileSync(path.join(dir, 'second.json')));
    }
    const { decision } = await check('production', [
      'second.sigstore.json',
      'second.approval.sigstore.json',
    ]);
    expect(decision.outcome).toBe('override');
  });

  it('a co-signature over a different statement (same request id, edited) is refused', async () => {
    const r = await gate([...request('third.json', ONCALL.sub), '--sign', ...local()], {
      SIGSTORE_ID_TOKEN: token(ONCALL),
    });
    expect(r.code).toBe(0);
    const edited = read('third.json');
    edited.predicate.justification = 'routine release, nothing is down';
    writeFileSync(path.join(dir, 'edited.json'), JSON.stringify(edited, null, 2));
    const a = await gate(['break-glass', 'approve', 'edited.json', ...local()], {
      SIGSTORE_ID_TOKEN: token(LEAD),
    });
    expect(a.code).toBe(0);
    const { decision } = await check('production', [
      'third.sigstore.json',
      'edited.approval.sigstore.json',
    ]);
    expect(decision.outcome).toBe('deny');
    expect(decision.breakGlassRefused).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          code: 'BREAK_GLASS_INVALID',
          message: 'co-signature is over a different statement than the request',
        }),
        expect.objectContaining({ code: 'BREAK_GLASS_APPROVALS_MISSING' }),
      ]),
    );
  });
});

describe('the signer must be the requester', () => {
  it('keyless: refused once fulcio names the signer, before anything reaches rekor', async () => {
    // rekor is down: had the signature been sent there, this would be SIGN_REKOR_FAILED
    const down = await closedPort();
    const r = await gate(
      [
        ...request('someone.json', 'someone@acme.example'),
        ...['--sign', '--fulcio-url', svc.fulcioURL, '--rekor-url', down],
      ],
      { SIGSTORE_ID_TOKEN: token(ONCALL) },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `gate: SIGN_SIGNER_MISMATCH: you sign as ${ONCALL.sub} but the request names someone@acme.example as its requester, which the gate would refuse: give --requester ${ONCALL.sub}\n`,
    );
  });
});

describe('gate break-glass request --sign --key', () => {
  it('signs with a pem key, logged in rekor so it has a verified time: accepted as an override', async () => {
    const r = await gate([
      ...request('keyed.json', keyHex, 'staging'),
      ...['--sign', '--key', 'oncall.key', '--tsa-url', svc.tsaURL, ...local()],
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signed as ${keyId}:`);
    expect(r.stdout).toMatch(/rekor log index \d+, integrated .*, 1 rfc 3161 timestamp\)/);
    const bundle = read('keyed.sigstore.json');
    expect(bundle.verificationMaterial.publicKey).toEqual({ hint: keyId });
    // as cosign writes it: cosign skips a signature whose keyid is not its own form of the id
    expect(bundle.dsseEnvelope.signatures[0].keyid ?? '').toBe('');
    expect(bundle.verificationMaterial.tlogEntries).toHaveLength(1);
    const { decision, code } = await check('staging', ['keyed.sigstore.json']);
    expect(decision.breakGlassRefused).toBeUndefined();
    expect(decision.outcome).toBe('override');
    expect(code).toBe(0);
    expect(decision.override.signers).toEqual([keyId]);
  });

  it('refuses, before signing, a key that is not the requester the statement names', async () => {
    const r = await gate([
      ...request('wrong.json', ONCALL.sub, 'staging'),
      ...['--sign', '--key', 'oncall.key', ...local()],
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `gate: SIGN_SIGNER_MISMATCH: you sign as ${keyId} but the request names ${ONCALL.sub} as its requester, which the gate would refuse: give --requester ${keyId}\n`,
    );
  });
});

/** A port nothing listens on: a service that is down. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

describe('signing failures are coded, one line, never a stack trace', () => {
  const signed = (extra: string[], env: Record<string, string> = {}) =>
    gate([...request('failing.json', ONCALL.sub), '--sign', ...extra], env);

  it('without --sign, the statement alone, and how to sign and approve it', async () => {
    const r = await gate(request('unsigned-ok.json', ONCALL.sub));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `  cosign attest-blob --yes --statement ${path.join(dir, 'unsigned-ok.json')} --bundle`,
    );
    expect(r.stdout).toContain(
      `co-signers sign the same statement: gate break-glass approve ${path.join(dir, 'unsigned-ok.json')}`,
    );
    expect(() => readFileSync(path.join(dir, 'unsigned-ok.sigstore.json'))).toThrow();
  });

  it('signing options without --sign: USAGE_ERROR, nothing written', async () => {
    const r = await gate([...request('unsigned.json', keyHex), '--key', 'oncall.key']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('gate: USAGE_ERROR: signing options need --sign\n');
    expect(() => readFileSync(path.join(dir, 'unsigned.json'))).toThrow();
  });

  it('no token in the environment and no browser: SIGN_NO_IDENTITY_TOKEN', async () => {
    const r = await signed(local());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^gate: SIGN_NO_IDENTITY_TOKEN: no identity token: set SIGSTORE_ID_TOKEN, /,
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('fulcio down, or refusing: SIGN_FULCIO_FAILED', async () => {
    const down = await closedPort();
    const env = { SIGSTORE_ID_TOKEN: token(ONCALL) };
    const r = await signed(['--fulcio-url', down, '--rekor-url', svc.rekorURL], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `gate: SIGN_FULCIO_FAILED: fulcio at ${down} unreachable: econnrefused\n`,
    );
    // the local rekor has no fulcio api: it answers 404
    const refused = await signed(['--fulcio-url', svc.rekorURL, '--rekor-url', svc.rekorURL], env);
    expect(refused.stderr).toMatch(
      /^gate: SIGN_FULCIO_FAILED: fulcio at http:\S+ refused: \(404\)/,
    );
  });

  it('rekor down, or refusing: SIGN_REKOR_FAILED, and no bundle is written', async () => {
    const down = await closedPort();
    const env = { SIGSTORE_ID_TOKEN: token(ONCALL) };
    const r = await signed(
      ['--fulcio-url', svc.fulcioURL, '--rekor-url', down, '--bundle', 'none.json'],
      env,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`gate: SIGN_REKOR_FAILED: rekor at ${down} unreachable: econnrefused\n`);
    expect(() => readFileSync(path.join(dir, 'none.json'))).toThrow();
    const refused = await signed(
      ['--fulcio-url', svc.fulcioURL, '--rekor-url', svc.fulcioURL],
      env,
    );
    expect(refused.stderr).toMatch(/^gate: SIGN_REKOR_FAILED: rekor at http:\S+ refused: \(404\)/);
  });

  it('a timestamp authority that is down: SIGN_TSA_FAILED', async () => {
    const down = await closedPort();
    const r = await gate([
      ...request('tsa.json', keyHex, 'staging'),
      ...['--sign', '--key', 'oncall.key', '--tsa-url', down, ...local()],
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `gate: SIGN_TSA_FAILED: the timestamp authority at ${down} unreachable: econnrefused\n`,
    );
  });

  it('a token that is not a jwt: SIGN_IDENTITY_TOKEN_INVALID, the token never printed', async () => {
    const r = await signed(local(), { SIGSTORE_ID_TOKEN: 'not-a-jwt-secret' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gate: SIGN_IDENTITY_TOKEN_INVALID: /);
    expect(r.stderr).not.toContain('not-a-jwt-secret');
  });

  it('an unreadable key: INPUT_UNREADABLE; a file that is no key: SIGN_KEY_INVALID', async () => {
    const missing = await signed(['--key', 'missing.key', ...local()]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^gate: INPUT_UNREADABLE: cannot read key .*missing\.key/);
    writeFileSync(path.join(dir, 'junk.key'), 'not a key\n');
    const junk = await signed(['--key', 'junk.key', ...local()]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/^gate: SIGN_KEY_INVALID: the key is not a pem private key/);
    const pub = await signed(['--key', 'oncall.pub', ...local()]);
    expect(pub.stderr).toBe(
      'gate: SIGN_KEY_INVALID: this is a public key: --key takes the private key\n',
    );
  });

  it('an encrypted key signs with GATE_KEY_PASSPHRASE, and says so without it', async () => {
    const plain = createPrivateKey(readFileSync(path.join(dir, 'oncall.key')));
    writeFileSync(
      path.join(dir, 'enc.key'),
      plain.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'hunter22' }),
    );
    const without = await gate([
      ...request('enc.json', keyHex, 'staging'),
      ...['--sign', '--key', 'enc.key', ...local()],
    ]);
    expect(without.stderr).toBe(
      'gate: SIGN_KEY_INVALID: the key is encrypted: give its passphrase in GATE_KEY_PASSPHRASE\n',
    );
    const withIt = await gate(
      [...request('enc.json', keyHex, 'staging'), ...['--sign', '--key', 'enc.key', ...local()]],
      { GATE_KEY_PASSPHRASE: 'hunter22' },
    );
    expect(withIt.stderr).toBe('');
    expect(withIt.stdout).toContain(`signed as ${keyId}:`);
  });
});

describe('gate break-glass approve refuses what it must not sign', () => {
  it('a file that is not json, a statement of another kind, an expired request, the requester', async () => {
    const env = { SIGSTORE_ID_TOKEN: token(LEAD) };
    writeFileSync(path.join(dir, 'junk.json'), '{"nope"');
    const junk = await gate(['break-glass', 'approve', 'junk.json', ...local()], env);
    expect(junk.stderr).toMatch(/^gate: INPUT_MALFORMED_JSON: junk\.json is not valid json/);
    writeFileSync(
      path.join(dir, 'provenance.json'),
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        predicateType: 'https://slsa.dev/provenance/v1',
      }),
    );
    const other = await gate(['break-glass', 'approve', 'provenance.json', ...local()], env);
    expect(other.stderr).toBe(
      `gate: STATEMENT_INVALID: provenance.json is not a break-glass request (predicate type ${BG_TYPE})\n`,
    );
    const expired = read('request.json');
    expired.predicate.expiresAt = '2020-01-01T00:00:00.000Z';
    writeFileSync(path.join(dir, 'expired.json'), JSON.stringify(expired));
    const late = await gate(['break-glass', 'approve', 'expired.json', ...local()], env);
    expect(late.stderr).toMatch(
      /^gate: BREAK_GLASS_EXPIRED: request \S+ expired at 2020-01-01T00:00:00.000Z/,
    );
    const self = await gate(['break-glass', 'approve', 'request.json', ...local()], {
      SIGSTORE_ID_TOKEN: token(ONCALL),
    });
    expect(self.code).toBe(1);
    expect(self.stderr).toBe(
      `gate: SIGN_SIGNER_MISMATCH: you sign as ${ONCALL.sub}, the requester: an approval must come from someone else\n`,
    );
  });
});

/** A GitHub Actions token service: answers with a token for the audience asked, to its bearer. */
async function actionsTokenService(jwt: string) {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    asked.push(`${req.url} ${req.headers.authorization}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: jwt }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token?api-version=2.0`;
  return { url, asked, close: () => new Promise((r) => server.close(r)) };
}

describe('a token from GitHub Actions', () => {
  it('a token service that cannot be reached: SIGN_NO_IDENTITY_TOKEN naming it', async () => {
    const down = await closedPort();
    const r = await gate([...request('gha-down.json', ONCALL.sub), '--sign', ...local()], {
      ACTIONS_ID_TOKEN_REQUEST_URL: `${down}/token`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'job-bearer',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `gate: SIGN_NO_IDENTITY_TOKEN: cannot reach the github actions token service at ${down}\n`,
    );
    expect(r.stderr).not.toContain('job-bearer');
  });

  it('asks the job token service for a sigstore-audience token with the job bearer', async () => {
    const actions = await actionsTokenService(token(ONCALL));
    try {
      const r = await gate([...request('gha.json', ONCALL.sub), '--sign', ...local()], {
        ACTIONS_ID_TOKEN_REQUEST_URL: actions.url,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'job-bearer',
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`signed as ${ONCALL.sub}:`);
      expect(actions.asked).toEqual(['/token?api-version=2.0&audience=sigstore Bearer job-bearer']);
    } finally {
      await actions.close();
    }
  });
});

/** The README's `gate` commands in sh blocks, continuation lines joined, comments dropped. */
function readmeGateCommands(): string[][] {
  const readme = readFileSync(packagePath('README.md'), 'utf8');
  const commands: string[][] = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
      const text = line.replace(/\s+#.*$/, '').trim();
      if (!text.startsWith('gate ')) continue;
      // words, and "double-quoted words" as one
      const words = [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
      commands.push(words.slice(1));
    }
  }
  return commands;
}

describe("the README's signing commands, as written", () => {
  it('request --sign, approve, and gate check on the two bundles: an override', async () => {
    const all = readmeGateCommands();
    const find = (test: (c: string[]) => boolean) => {
      const found = all.filter(test);
      expect(found).toHaveLength(1);
      return found[0]!.map((w) => w.replaceAll('HEX', HEX));
    };
    const sign = find((c) => c[0] === 'break-glass' && c[1] === 'request' && c.includes('--sign'));
    const approve = find((c) => c[0] === 'break-glass' && c[1] === 'approve');
    const decide = find((c) => c[0] === 'check' && c.includes('request.approval.sigstore.json'));
    // a folder of its own, with this file's gate.yaml and what it names
    const readmeDir = path.join(dir, 'readme');
    mkdirSync(readmeDir);
    for (const f of ['gate.yaml', 'trusted_root.json', 'oncall.pub'])
      copyFileSync(path.join(dir, f), path.join(readmeDir, f));
    // only the flags that point the signing at the local services instead of public-good
    const r = await gate([...sign, ...local()], { SIGSTORE_ID_TOKEN: token(ONCALL) }, readmeDir);
    expect(r.stderr).toBe('');
    const a = await gate([...approve, ...local()], { SIGSTORE_ID_TOKEN: token(LEAD) }, readmeDir);
    expect(a.stderr).toBe('');
    const c = await gate([...decide, '--format', 'json'], {}, readmeDir);
    const decision = JSON.parse(c.stdout);
    expect(decision.outcome).toBe('override');
    expect(decision.override.signers).toEqual([ONCALL.sub, LEAD.sub]);
    expect(c.code).toBe(0);
  });
});

describe('the built gate binary (dist/cli/main.js)', () => {
  const BIN = packagePath('dist', 'cli', 'main.js');
  async function binary(args: string[], env: Record<string, string>) {
    try {
      const r = await promisify(execFile)(process.execPath, [BIN, ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
      });
      return { code: 0, ...r };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('signs with the token in its environment; without one it exits 1 with one coded line', async () => {
    const ok = await binary([...request('bin.json', ONCALL.sub), '--sign', ...local()], {
      SIGSTORE_ID_TOKEN: token(ONCALL),
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`signed as ${ONCALL.sub}: ${path.join(dir, 'bin.sigstore.json')}`);
    const none = await binary([...request('bin-none.json', ONCALL.sub), '--sign', ...local()], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^gate: SIGN_NO_IDENTITY_TOKEN: [^\n]*\n$/);
  });
});

describe('POST /v1/break-glass takes the bundles gate signed', () => {
  it('answers 201 with the request id for the request and its approval; refuses an edited co-signature', async () => {
    const env = (who: { iss: string; sub: string }) => ({ SIGSTORE_ID_TOKEN: token(who) });
    expect(
      (await gate([...request('posted.json', ONCALL.sub), '--sign', ...local()], env(ONCALL))).code,
    ).toBe(0);
    expect(
      (await gate(['break-glass', 'approve', 'posted.json', ...local()], env(LEAD))).code,
    ).toBe(0);
    const edited = read('posted.json');
    edited.predicate.ticket = 'INC-0000';
    writeFileSync(path.join(dir, 'posted-edited.json'), JSON.stringify(edited, null, 2));
    expect(
      (await gate(['break-glass', 'approve', 'posted-edited.json', ...local()], env(LEAD))).code,
    ).toBe(0);

    const gateInstance = await createGate(loadConfig(path.join(dir, 'gate.yaml')));
    const app = createGateServer({ gate: gateInstance, tokens: { breakGlass: ['bg-token'] } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const post = async (files: string[]) => {
        const res = await fetch(`${base}/v1/break-glass`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer bg-token' },
          body: JSON.stringify({ bundles: files.map(read) }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      const refused = await post(['posted.sigstore.json', 'posted-edited.approval.sigstore.json']);
      expect([refused.status, refused.body.error?.code]).toEqual([422, 'BREAK_GLASS_INVALID']);
      const accepted = await post(['posted.sigstore.json', 'posted.approval.sigstore.json']);
      expect(accepted.status).toBe(201);
      expect(accepted.body.requestId).toBe(read('posted.json').predicate.requestId);
    } finally {
      await app.close();
    }
  });
});
