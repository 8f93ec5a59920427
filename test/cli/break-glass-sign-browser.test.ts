import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/program.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The interactive sign-in of `gate break-glass request --sign --browser`: authorization code with
 * PKCE and a loopback redirect, against a local OIDC provider on 127.0.0.1 that checks what a
 * real one checks (client, redirect, state carried back, the code verifier against the
 * challenge). The "browser" is a process the gate starts through $BROWSER, as it would start a
 * real one: it follows the provider's redirect to the gate's callback, as a browser would after
 * the user signed in. What this cannot show: a real browser and oauth2.sigstore.dev's own pages.
 */
const ONCALL = 'oncall@acme.example';
const ISSUER_CLAIM = 'https://oidc.acme.example';
const HEX = createHash('sha256').update('hotfix artifact\n').digest('hex');

interface Provider {
  url: string;
  /** deny the next sign-in (the user pressed "cancel") */
  deny: boolean;
  seen: { redirectUri?: string; verifierMatched?: boolean; scope?: string };
  close(): Promise<unknown>;
}

async function oidcProvider(): Promise<Provider> {
  const codes = new Map<string, { challenge: string; redirectUri: string; nonce: string }>();
  const p: Provider = { url: '', deny: false, seen: {}, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', p.url);
    const json = (status: number, body: object): void =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/.well-known/openid-configuration') {
      json(200, {
        issuer: p.url,
        authorization_endpoint: `${p.url}/auth`,
        token_endpoint: `${p.url}/token`,
      });
    } else if (url.pathname === '/auth') {
      const q = url.searchParams;
      const redirectUri = q.get('redirect_uri') ?? '';
      p.seen.redirectUri = redirectUri;
      p.seen.scope = q.get('scope') ?? '';
      const valid =
        q.get('client_id') === 'sigstore' &&
        q.get('response_type') === 'code' &&
        q.get('code_challenge_method') === 'S256' &&
        /^http:\/\/localhost:\d+\/auth\/callback$/.test(redirectUri);
      if (!valid) return json(400, { error: 'invalid_request' });
      const back = new URL(redirectUri);
      back.searchParams.set('state', q.get('state') ?? '');
      if (p.deny) back.searchParams.set('error', 'access_denied');
      else {
        const code = Math.random().toString(36).slice(2);
        codes.set(code, {
          challenge: q.get('code_challenge') ?? '',
          redirectUri,
          nonce: q.get('nonce') ?? '',
        });
        back.searchParams.set('code', code);
      }
      res.writeHead(302, { location: back.href }).end();
    } else if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        p.seen.verifierMatched =
          grant !== undefined &&
          createHash('sha256').update(verifier).digest('base64url') === grant.challenge;
        if (!grant || !p.seen.verifierMatched || form.get('redirect_uri') !== grant.redirectUri)
          return json(400, { error: 'invalid_grant' });
        const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const now = Math.floor(Date.now() / 1000);
        const idToken = `${part({ alg: 'none' })}.${part({
          iss: ISSUER_CLAIM,
          sub: ONCALL,
          aud: 'sigstore',
          nonce: grant.nonce,
          iat: now,
          exp: now + 600,
        })}.c2ln`;
        json(200, { id_token: idToken, token_type: 'Bearer' });
      });
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () => new Promise((r) => server.close(r));
  return p;
}

let svc: LocalSigstore;
let idp: Provider;
let dir: string;
let browser: string;

beforeAll(async () => {
  [svc, idp] = await Promise.all([startLocalSigstore(), oidcProvider()]);
  dir = mkdtempSync(path.join(tmpdir(), 'gate-bg-browser-'));
  // the browser: opens the address, follows redirects, and keeps the page it ends on
  browser = path.join(dir, 'browser.mjs');
  writeFileSync(
    browser,
    [
      `#!${process.execPath}`,
      "import { writeFileSync } from 'node:fs';",
      'const res = await fetch(process.argv[2]);',
      `writeFileSync(${JSON.stringify(path.join(dir, 'page.txt'))}, \`\${res.status} \${await res.text()}\`);`,
      '',
    ].join('\n'),
  );
  chmodSync(browser, 0o755);
});
afterAll(async () => {
  await Promise.all([svc?.close(), idp?.close()]);
});

/** The page the browser ended on: it writes it after the gate has its answer, so wait for it. */
async function page(): Promise<string> {
  const file = path.join(dir, 'page.txt');
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
  const text = readFileSync(file, 'utf8');
  rmSync(file);
  return text;
}

async function gate(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    cwd: dir,
    env,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

const signedRequest = (out: string) => [
  ...['break-glass', 'request', '--subject', `sha256:${HEX}`, '--env', 'production'],
  ...['--ticket', 'INC-9', '--justification', 'checkout is down, the fix must ship now'],
  ...['--requester', ONCALL, '--out', out, '--sign', '--browser'],
  ...['--oidc-issuer', idp.url, '--fulcio-url', svc.fulcioURL, '--rekor-url', svc.rekorURL],
];

describe('gate break-glass request --sign --browser', () => {
  it('signs in through the browser (code flow with pkce, loopback redirect) and signs keyless', async () => {
    const r = await gate(signedRequest('request.json'), { BROWSER: browser });
    expect(r.stderr).toMatch(new RegExp(`^sign in to sign: ${idp.url}/auth\\?response_type=code&`));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signed as ${ONCALL}:`);
    expect(idp.seen.verifierMatched).toBe(true);
    expect(idp.seen.scope).toBe('openid email');
    expect(await page()).toBe('200 signed in: you may close this window\n');
    const bundle = JSON.parse(readFileSync(path.join(dir, 'request.sigstore.json'), 'utf8'));
    expect(bundle.verificationMaterial.certificate.rawBytes).toBeTruthy();
  });

  it('a sign-in the provider refuses: SIGN_OIDC_FLOW_FAILED, and the browser is told', async () => {
    idp.deny = true;
    try {
      const r = await gate(signedRequest('denied.json'), { BROWSER: browser });
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').slice(1).join('\n')).toBe(
        'gate: SIGN_OIDC_FLOW_FAILED: the oidc issuer refused the sign-in: access_denied\n',
      );
      expect(await page()).toBe('400 sign-in failed\n');
    } finally {
      idp.deny = false;
    }
  });

  it('an issuer that cannot be reached: SIGN_OIDC_FLOW_FAILED naming it', async () => {
    const args = signedRequest('unreachable.json');
    args[args.indexOf('--oidc-issuer') + 1] = 'http://127.0.0.1:9/auth';
    const r = await gate(args, { BROWSER: browser });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'gate: SIGN_OIDC_FLOW_FAILED: cannot reach the oidc issuer http://127.0.0.1:9/auth at http://127.0.0.1:9\n',
    );
  });
});
