import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from 'playwright-core';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropTriggers } from '../audit/tamper.js';
import type { Decision } from '../../src/decision.js';
import {
  artifactsFor,
  AUDIT_TOKEN,
  breakGlass,
  breakGlassRoute,
  decide,
  hex,
  HOTFIX,
  JUSTIFICATION,
  killChildren,
  REQUEST_ID,
  runGate,
  serve,
  startUiFixture,
  WITH_PROVENANCE,
  type Served,
  type UiFixture,
} from './served.js';

/**
 * The auditor's web view (issue 14 item 3) in headless Chromium (Debian's, driven by
 * playwright-core) against a real `gate serve` over a real ledger: an allow, two denies and an
 * override. Every request the browser makes is recorded: none may go to another host or carry
 * the audit token in its URL. Screenshots are kept in test-artifacts/ui/http/.
 */
let ui: UiFixture;
let served: Served;
let browser: Browser;
let shots: string;
const decisions: Record<'allow' | 'deny' | 'unknownEnv' | 'override' | 'storedOverride', Decision> =
  {} as never;
/** a subject denied, then let through by a request stored with POST /v1/break-glass */
const STORED_HOTFIX = hex('ui: a hotfix let through by a stored request');
const STORED_ID = 'req-ui-stored';
const REVOKED_ID = 'req-ui-revoked';
const REFUSED_ID = 'req-ui-refused';
/** the ledger's records: five decisions, three requests stored or refused, one revocation */
const RECORDS = 9;
/** every URL any page of these tests requested, and every console message */
const requested: string[] = [];
const consoleMessages: string[] = [];

beforeAll(async () => {
  shots = artifactsFor('http');
  ui = await startUiFixture();
  served = await serve(ui.config);
  decisions.allow = await decide(served.origin, WITH_PROVENANCE);
  decisions.deny = await decide(served.origin, HOTFIX);
  decisions.unknownEnv = await decide(served.origin, WITH_PROVENANCE, 'staging');
  decisions.override = await breakGlass(ui);
  // stored requests: one used through POST /v1/decisions, one revoked, one refused (production
  // has no break glass)
  const store = async (requestId: string, subject: string, environment = 'dev') =>
    breakGlassRoute(served.origin, {
      store: await ui.sign({ requestId, subject, environment }),
    });
  expect((await store(STORED_ID, STORED_HOTFIX)).status).toBe(201);
  decisions.storedOverride = await decide(served.origin, STORED_HOTFIX, 'dev', STORED_ID);
  expect((await store(REVOKED_ID, STORED_HOTFIX)).status).toBe(201);
  expect((await breakGlassRoute(served.origin, { revoke: REVOKED_ID })).status).toBe(200);
  expect((await store(REFUSED_ID, STORED_HOTFIX, 'production')).body).toMatchObject({
    error: { code: 'BREAK_GLASS_NOT_CONFIGURED' },
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await served?.stop();
  killChildren();
  await ui?.close();
});

async function newPage(
  opts: { javaScriptEnabled?: boolean } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(opts);
  const page = await context.newPage();
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => consoleMessages.push(`${m.type()}: ${m.text()}`));
  return { context, page };
}

async function signIn(page: Page, token = AUDIT_TOKEN) {
  await page.goto(`${served.origin}/ui/login`);
  await page.getByLabel('Audit token').fill(token);
  return Promise.all([
    page.waitForNavigation(),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** an element's text as read: runs of white space (from the templates' layout) made one space */
const read = async (l: Locator) => ((await l.textContent()) ?? '').replace(/\s+/g, ' ').trim();

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

describe('the decisions the web view is tested on', () => {
  it('are an allow, two denies and two overrides, all in the ledger gate serve reads', () => {
    expect([
      decisions.allow.outcome,
      decisions.deny.outcome,
      decisions.unknownEnv.outcome,
      decisions.override.outcome,
      decisions.storedOverride.outcome,
    ]).toEqual(['allow', 'deny', 'deny', 'override', 'override']);
    expect(served.webView).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/$/);
  });
});

describe('without a session', () => {
  it('sends every page to the sign-in form and refuses a POST with 401', async () => {
    const { context, page } = await newPage();
    const res = await page.goto(`${served.origin}/ui/decisions/${decisions.allow.id}`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect(res?.status()).toBe(200);
    await expect(page.getByLabel('Audit token')).toBeDefined();
    await context.close();
    const post = await fetch(`${served.origin}/ui/decisions/${decisions.allow.id}/replay`, {
      method: 'POST',
      headers: { origin: served.origin },
      redirect: 'manual',
    });
    expect(post.status).toBe(401);
    const api = await fetch(`${served.origin}/ui/ledger`, { redirect: 'manual' });
    expect([api.status, api.headers.get('location')]).toEqual([303, '/ui/login']);
  });

  it('refuses a wrong token with 401 and sets no cookie', async () => {
    const { context, page } = await newPage();
    const [res] = await signIn(page, 'not-the-token');
    expect(res?.status()).toBe(401);
    await expect(page.getByRole('alert').textContent()).resolves.toContain(
      'that token is not allowed to read the audit log',
    );
    expect(await context.cookies()).toEqual([]);
    await shot(page, '01-wrong-token');
    await context.close();
  });

  it('refuses a sign-in posted from another origin (login CSRF), or with none', async () => {
    const post = (origin?: string) =>
      fetch(`${served.origin}/ui/login`, {
        method: 'POST',
        headers: {
          ...(origin ? { origin } : {}),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: `token=${AUDIT_TOKEN}`,
        redirect: 'manual',
      });
    for (const res of [await post('http://evil.example'), await post()]) {
      expect(res.status).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
    // the same request from the server's own origin signs in: the Origin is what was refused
    const own = await post(served.origin);
    expect(own.status).toBe(303);
    expect(own.headers.get('set-cookie')).toMatch(/^gate-ui=/);
  });
});

describe('signed in', () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    ({ context, page } = await newPage());
    await signIn(page);
  });
  afterAll(async () => context?.close());

  it('keeps the session in an HttpOnly, SameSite=Strict cookie (not Secure over plain http)', async () => {
    expect(new URL(page.url()).pathname).toBe('/ui/decisions');
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({
      name: 'gate-ui',
      httpOnly: true,
      sameSite: 'Strict',
      secure: false,
      path: '/',
    });
    expect(cookies[0]!.value).not.toContain(AUDIT_TOKEN);
    await shot(page, '02-decisions');
  });

  it('lists every decision, newest first', async () => {
    const rows = page.locator('tbody tr');
    await expect(rows.count()).resolves.toBe(5);
    await expect(rows.first().textContent()).resolves.toContain(decisions.storedOverride.id);
  });

  it('filters by outcome, environment, rule, requester and subject through the form', async () => {
    await page.getByLabel('Outcome').selectOption('deny');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Filter' }).click(),
    ]);
    await expect(page.locator('tbody tr').count()).resolves.toBe(2);
    await page.getByLabel('Environment').fill('staging');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Filter' }).click(),
    ]);
    const rows = page.locator('tbody tr');
    await expect(rows.count()).resolves.toBe(1);
    await expect(rows.first().textContent()).resolves.toContain(decisions.unknownEnv.id);
    await shot(page, '03-filtered-deny-staging');
    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByLabel('Rule').fill('test.provenance');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Filter' }).click(),
    ]);
    // the deny for it, and the overrides that set it aside
    const ids = await page.locator('tbody tr').allTextContents();
    expect(ids).toHaveLength(3);
    expect(ids.join()).toContain(decisions.deny.id);
    expect(ids.join()).toContain(decisions.override.id);
    expect(ids.join()).toContain(decisions.storedOverride.id);
    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByLabel('Requester').fill(decisions.override.override!.requester);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Filter' }).click(),
    ]);
    await expect(page.locator('tbody tr').allTextContents()).resolves.toEqual([
      expect.stringContaining(decisions.storedOverride.id),
      expect.stringContaining(decisions.override.id),
    ]);
    // a subject's digest is a link to its decisions
    await page.getByRole('link', { name: 'Clear' }).click();
    await page
      .getByRole('link', { name: new RegExp(`^sha256:${WITH_PROVENANCE.slice(0, 12)}`) })
      .first()
      .click();
    expect(new URL(page.url()).searchParams.get('subject')).toBe(`sha256:${WITH_PROVENANCE}`);
    await expect(page.locator('tbody tr').count()).resolves.toBe(2);
  });

  it('filters by time: nothing from tomorrow on, everything before it', async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await page.goto(`${served.origin}/ui/decisions`);
    await page.getByLabel('From (inclusive)').fill(tomorrow);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Filter' }).click(),
    ]);
    await expect(
      page.getByText('No recorded decision matches these filters.').count(),
    ).resolves.toBe(1);
    await page.goto(`${served.origin}/ui/decisions?to=${tomorrow}`);
    await expect(page.locator('tbody tr').count()).resolves.toBe(5);
  });

  it('says what is wrong with a filter, with 400', async () => {
    const res = await page.goto(
      `${served.origin}/ui/decisions?subject=sha256:nothex&from=yesterday`,
    );
    expect(res?.status()).toBe(400);
    const alerts = await page.getByRole('alert').allTextContents();
    expect(alerts.join('\n')).toMatch(/subject: /);
    expect(alerts.join('\n')).toMatch(/from: a time such as/);
  });

  it('opens an override in full: subjects, violations overridden, the request with its signers and justification, the digests', async () => {
    await page.goto(`${served.origin}/ui/decisions?outcome=override`);
    await Promise.all([
      page.waitForNavigation(),
      page
        .locator('tbody tr', { hasText: decisions.override.id })
        .getByRole('link', { name: 'Open' })
        .click(),
    ]);
    expect(new URL(page.url()).pathname).toBe(`/ui/decisions/${decisions.override.id}`);
    const main = (await page.locator('main').textContent())!;
    const o = decisions.override.override!;
    for (const text of [
      `sha256:${HOTFIX}`,
      REQUEST_ID,
      JUSTIFICATION, // shown as text: its <b> is not markup
      'INC-77',
      o.signers[0]!,
      'test.provenance',
      'attach a slsa provenance attestation',
      decisions.override.digests.policy!,
      decisions.override.digests.trustRoot,
      decisions.override.digests.input!,
    ])
      expect(main).toContain(text);
    expect(await page.locator('main b').count()).toBe(0);
    await shot(page, '04-override');
  });

  it('shows why each piece of evidence was used', async () => {
    await page.goto(`${served.origin}/ui/decisions/${decisions.allow.id}`);
    const evidence = page.locator('h2:text-is("Evidence") + table tbody tr');
    await expect(evidence.count()).resolves.toBe(1);
    const row = await read(evidence.first());
    expect(row).toContain('verified');
    expect(row).toMatch(/used: https:\/\/slsa\.dev\/provenance\/v1 signed by \S+ via \S+/);
    await expect(page.getByText('None: every rule evaluated held.').count()).resolves.toBe(1);
  });

  it('replays a decision with a button and says it is the same', async () => {
    await page.goto(`${served.origin}/ui/decisions/${decisions.deny.id}`);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Replay this decision' }).click(),
    ]);
    await expect(page.getByRole('status').textContent()).resolves.toContain(
      'Same: every evaluation agrees',
    );
    await shot(page, '05-replay-same');
  });

  it('shows the ledger verified, its last checkpoint and the key that signed it', async () => {
    await page.getByRole('link', { name: 'Ledger health' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toBe(
      `Verified: all ${RECORDS} records`,
    );
    const main = await read(page.locator('main'));
    expect(main).toContain(`Chain verified up to record ${RECORDS}`);
    expect(main).toContain(`Key id ${ui.checkpointKeyId}`);
    expect(main).toContain('Key the configured key');
    await shot(page, '06-ledger');
  });

  it('lists break-glass requests: active, revoked, refused, with what each covered', async () => {
    await page.getByRole('link', { name: 'Break glass' }).click();
    const sections = page.locator('section.request');
    // only an active request's status is a badge
    const active = await sections.filter({ has: page.locator('h3 .outcome') }).count();
    const byId = async (id: string) =>
      read(sections.filter({ has: page.locator(`h3:has-text("${id}")`) }));
    // presented as bundles to gate check: active, covering HOTFIX through its one override
    const checked = await byId(REQUEST_ID);
    expect(checked).toContain(`${REQUEST_ID} active`);
    expect(checked).toContain(`sha256:${HOTFIX}`);
    expect(checked).toContain(decisions.override.id);
    expect(checked).toContain('not stored: presented as bundles');
    // stored with POST /v1/break-glass and used through POST /v1/decisions
    const stored = await byId(STORED_ID);
    expect(stored).toContain(`${STORED_ID} active`);
    expect(stored).toContain(`sha256:${STORED_HOTFIX}`);
    expect(stored).toContain(decisions.storedOverride.id);
    expect(stored).toContain('(POST /v1/break-glass)');
    expect(stored).toContain('Reuse until it expires');
    expect(stored).toContain(JUSTIFICATION);
    // stored, then revoked over DELETE: no longer active, never used
    const revoked = await byId(REVOKED_ID);
    expect(revoked).toContain(`${REVOKED_ID} revoked`);
    expect(revoked).toMatch(/Revoked \S+ \(server\)/);
    expect(revoked).toContain('Used not yet');
    expect(active).toBe(2);
    const refused = await read(page.locator('h2:text-is("Refused") + table tbody'));
    expect(refused).toContain(REFUSED_ID);
    expect(refused).toContain('BREAK_GLASS_NOT_CONFIGURED');
    expect(refused).toContain('production');
    await shot(page, '07-break-glass');
  });

  it('is usable from the keyboard: the first Tab reaches the skip link, then the sections', async () => {
    await page.goto(`${served.origin}/ui/decisions`);
    // the element that has the focus: its id, or its text
    const focused = async () => {
      const el = page.locator(':focus');
      return (await el.getAttribute('id')) || (await read(el));
    };
    await page.keyboard.press('Tab');
    await expect(focused()).resolves.toBe('Skip to content');
    await shot(page, '08-skip-link-focused');
    const reached: string[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      reached.push(await focused());
    }
    expect(reached).toEqual([
      'Decisions',
      'Break glass',
      'Recheck drift',
      'Ledger health',
      'Sign out',
      'f-subject',
    ]);
    // the skip link moves the focus past the navigation to the content
    await page.goto(`${served.origin}/ui/decisions`);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect(focused()).resolves.toBe('main');
    await page.keyboard.press('Tab');
    await expect(focused()).resolves.toBe('f-subject');
    // Enter on a focused link follows it
    await page.goto(`${served.origin}/ui/decisions`);
    for (let i = 0; i < 5; i++) await page.keyboard.press('Tab');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(new URL(page.url()).pathname).toBe('/ui/ledger');
  });

  it('refuses a replay posted from another origin, even with the session cookie', async () => {
    const cookie = (await context.cookies())[0]!;
    const res = await fetch(`${served.origin}/ui/decisions/${decisions.deny.id}/replay`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', cookie: `${cookie.name}=${cookie.value}` },
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
  });

  it('signs out: the session ends on the server, not only in the browser', async () => {
    const cookie = (await context.cookies())[0]!;
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    const again = await fetch(`${served.origin}/ui/decisions`, {
      headers: { cookie: `${cookie.name}=${cookie.value}` },
      redirect: 'manual',
    });
    expect([again.status, again.headers.get('location')]).toEqual([303, '/ui/login']);
  });
});

describe('with JavaScript disabled', () => {
  it('signs in, lists, opens and replays all the same', async () => {
    const { context, page } = await newPage({ javaScriptEnabled: false });
    await signIn(page);
    await expect(page.locator('tbody tr').count()).resolves.toBe(5);
    await page.goto(`${served.origin}/ui/decisions/${decisions.override.id}`);
    await expect(page.locator('main').textContent()).resolves.toContain(REQUEST_ID);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Replay this decision' }).click(),
    ]);
    await expect(page.getByRole('status').textContent()).resolves.toContain('Same');
    await shot(page, '09-no-javascript-replay');
    await context.close();
  });
});

describe('rechecks', () => {
  it('shows the drift gate recheck found once the evidence is gone, and what each recheck re-decided', async () => {
    // the provenance that allowed WITH_PROVENANCE is gone: allowed then, denied now
    rmSync(path.join(ui.dir, 'evidence', 'app.sigstore.json'));
    const run = await runGate(['recheck', '--env', 'dev', '--config', ui.config]);
    expect([run.code, run.stderr]).toEqual([1, '']);
    const { context, page } = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Recheck drift' }).click();
    await expect(read(page.getByRole('status'))).resolves.toBe(
      '1 recheck found drift: allowed then, denied now.',
    );
    const rows = page.locator('tbody tr');
    await expect(rows.count()).resolves.toBe(3);
    const drift = rows.filter({ hasText: 'drift' });
    await expect(drift.count()).resolves.toBe(1);
    const text = await read(drift);
    expect(text).toContain(`sha256:${WITH_PROVENANCE.slice(0, 12)}`);
    expect(text).toMatch(/allow → deny/);
    expect(text).toContain('test.provenance: no provenance for');
    // the overrides' requests have not expired and cover what is violated now
    await expect(rows.filter({ hasText: 'covered' }).count()).resolves.toBe(2);
    await shot(page, '10-drift');
    // the recheck's own page links to the decision it re-decided
    await Promise.all([page.waitForNavigation(), drift.getByRole('link').first().click()]);
    const main = await read(page.locator('main'));
    expect(main).toContain(
      `This decision re-checks ${decisions.allow.id} (then allow, now deny): drift.`,
    );
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('link', { name: decisions.allow.id }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe(`/ui/decisions/${decisions.allow.id}`);
    await context.close();
  });
});

describe('what the browser was sent and asked for', () => {
  it('sends a strict Content-Security-Policy and no-referrer on every page and the stylesheet', async () => {
    for (const p of ['/ui/login', '/ui/assets/gate.css']) {
      const res = await fetch(`${served.origin}${p}`);
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('requested nothing from another host, never put the token in a URL, and met no CSP violation', () => {
    expect(requested.length).toBeGreaterThan(20);
    for (const url of requested) {
      expect(new URL(url).origin).toBe(served.origin);
      expect(url).not.toContain(AUDIT_TOKEN);
    }
    // the stylesheet was loaded (so the policy allowed it), and nothing was blocked
    expect(requested).toContain(`${served.origin}/ui/assets/gate.css`);
    expect(consoleMessages.filter((m) => /Content Security Policy|Refused to/i.test(m))).toEqual(
      [],
    );
  });

  it('enforces the policy in the browser: an injected inline style and a remote image are refused, and said so', async () => {
    // a page of its own, outside the recorders above: this one is meant to violate the policy
    const context = await browser.newContext();
    const page = await context.newPage();
    const said: string[] = [];
    const asked: string[] = [];
    page.on('console', (m) => said.push(m.text()));
    page.on('requestfailed', (r) => asked.push(`${r.url()} ${r.failure()?.errorText}`));
    const answered: string[] = [];
    page.on('response', (r) => answered.push(r.url()));
    await page.goto(`${served.origin}/ui/login`);
    await page.evaluate(() => {
      const body = (
        globalThis as unknown as {
          document: { body: { insertAdjacentHTML(w: string, h: string): void } };
        }
      ).document.body;
      body.insertAdjacentHTML('beforeend', '<style>body { color: red }</style>');
      body.insertAdjacentHTML('beforeend', '<img src="http://elsewhere.example/pixel.png" alt="">');
    });
    await page.waitForTimeout(300);
    // (Chromium's wording: "Applying inline style violates the following Content Security
    // Policy directive", older ones "Refused to apply inline style"; the check above matches both)
    const violations = said.filter((m) => /Content Security Policy|Refused to/i.test(m));
    expect(violations.join('\n')).toMatch(/inline style.*style-src 'self'/i);
    expect(violations.join('\n')).toMatch(
      /image 'http:\/\/elsewhere\.example\/pixel\.png'.*img-src 'self'/i,
    );
    // the browser never fetched it: it failed as blocked, and nothing answered from there
    expect(asked).toEqual(['http://elsewhere.example/pixel.png csp']);
    expect(answered.filter((u) => !u.startsWith(served.origin))).toEqual([]);
    await context.close();
  });
});

describe('after the policy changed', () => {
  it('a replay of a deny made under the old policy says different (and the restart ended every session)', async () => {
    const { context: before, page: signedIn } = await newPage();
    await signIn(signedIn);
    const [cookie] = await before.cookies();
    await before.close();
    expect(await served.stop()).toBe(0);
    served = await serve(ui.changedConfig);
    // the same port is not promised: ask the new server with the old session
    const stale = await fetch(`${served.origin}/ui/decisions`, {
      headers: { cookie: `${cookie!.name}=${cookie!.value}` },
      redirect: 'manual',
    });
    expect([stale.status, stale.headers.get('location')]).toEqual([303, '/ui/login']);
    const { context, page } = await newPage();
    await signIn(page);
    await page.goto(`${served.origin}/ui/decisions/${decisions.deny.id}`);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Replay this decision' }).click(),
    ]);
    await expect(page.getByRole('status').textContent()).resolves.toContain('Different');
    const rows = await page.locator('tbody tr').allTextContents();
    expect(rows[0]).toMatch(/the policy of the time.*deny: test\.provenance.*same/s);
    expect(rows[1]).toMatch(/this server's policy.*allow.*different/s);
    await shot(page, '11-replay-different');
    await context.close();
  });
});

describe('after the ledger was edited behind the gate', () => {
  it('ledger health names the first broken record and how far the chain verifies', async () => {
    const db = new Database(path.join(ui.dir, 'ledger.db'));
    try {
      dropTriggers(db);
      db.prepare(
        `UPDATE records SET body = json_set(body, '$.decision.allow', json('true')) WHERE seq = 2`,
      ).run();
    } finally {
      db.close();
    }
    const { context, page } = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Ledger health' }).click();
    await expect(read(page.getByRole('alert'))).resolves.toMatch(
      /^Broken at record 2: LEDGER_CHAIN_BROKEN /,
    );
    const main = await read(page.locator('main'));
    expect(main).toContain('Chain verified up to record 1');
    expect(main).toContain(`First broken record 2 (${decisions.deny.id})`);
    await shot(page, '12-ledger-broken');
    await context.close();
  });
});
