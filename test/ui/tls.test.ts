import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintServerCert, type MintedCert } from '../server/tls-certs.js';
import { artifactsFor, AUDIT_TOKEN, hex, killChildren, serve, type Served } from './served.js';

/**
 * The web view over https (`gate serve --tls-cert --tls-key`, a certificate minted by openssl):
 * the session cookie is Secure and __Host- prefixed, and a real decision made over https is
 * listed. The default policy decides; the ledger is a fresh SQLite file.
 */
let dir: string;
let cert: MintedCert;
let served: Served;
let browser: Browser;
let decisionId: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-ui-tls-'));
  cert = mintServerCert(dir, 'server');
  const config = path.join(dir, 'gate.yaml');
  writeFileSync(config, JSON.stringify({ ledger: { path: path.join(dir, 'ledger.db') } }));
  served = await serve(config, { cert: cert.cert, key: cert.key });
  const agent = new Agent({ connect: { ca: cert.pem, servername: 'localhost' } });
  const res = await request(`${served.origin}/v1/decisions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subjects: [`sha256:${hex('ui over tls')}`], environment: 'dev' }),
  });
  decisionId = ((await res.body.json()) as { id: string }).id;
  await agent.close();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await served?.stop();
  killChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('the web view over https', () => {
  it('prints its https address, and signs in with a Secure, __Host- cookie', async () => {
    expect(served.webView).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ui\/$/);
    // the certificate is the test's own, trusted for this context only
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(served.webView);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await page.getByLabel('Audit token').fill(AUDIT_TOKEN);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/ui/decisions');
    expect(await context.cookies()).toEqual([
      expect.objectContaining({
        name: '__Host-gate-ui',
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
        path: '/',
      }),
    ]);
    await expect(page.locator('tbody tr').allTextContents()).resolves.toEqual([
      expect.stringContaining(decisionId),
    ]);
    await page.screenshot({ path: path.join(artifactsFor('https'), 'decisions.png') });
    for (const url of requested) {
      expect(new URL(url).origin).toBe(served.origin);
      expect(url).not.toContain(AUDIT_TOKEN);
    }
    await context.close();
  });
});
