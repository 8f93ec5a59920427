import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { AuditLedger } from '../../src/audit/ledger.js';
import type { Gate } from '../../src/gate.js';
import { installErrorHandling } from '../../src/server/errors.js';
import { escapeHtml, html } from '../../src/server/ui/html.js';
import { ledgerPage } from '../../src/server/ui/pages/ledger.js';
import { parseTime } from '../../src/server/ui/pages/decisions.js';
import { registerUiRoutes, type UiOptions } from '../../src/server/ui/routes.js';
import { createSessionStore } from '../../src/server/ui/session.js';

/**
 * The web view's parts without a browser: the escaping template, session expiry and bounds, the
 * time filter's parsing, and the refusals that need no decision (no audit token; plain http
 * beyond loopback). The routes run over a real (empty) SQLite ledger.
 */
let dir: string;
let ledger: AuditLedger;
const apps: FastifyInstance[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-ui-routes-'));
  ledger = createSqliteLedger({ path: path.join(dir, 'ledger.db') });
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

async function app(opts: Partial<UiOptions>): Promise<FastifyInstance> {
  const a = Fastify() as unknown as FastifyInstance;
  installErrorHandling(a);
  registerUiRoutes(a, {
    gate: { ledger } as Pick<Gate, 'ledger' | 'policy'>,
    config: { backend: 'sqlite', path: path.join(dir, 'ledger.db') },
    tokens: ['t'],
    secure: false,
    refuseInClear: false,
    ...opts,
  });
  await a.ready();
  apps.push(a);
  return a;
}

const login = (a: FastifyInstance, token: string) =>
  a.inject({
    method: 'POST',
    url: '/ui/login',
    headers: {
      origin: 'http://localhost:80',
      host: 'localhost:80',
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: `token=${encodeURIComponent(token)}`,
  });

describe('html', () => {
  it('escapes every value, in text and in attributes, and keeps only its own markup', () => {
    const evil = `"><script>alert('x')</script>&`;
    const out = html`<p title="${evil}">${evil}${html`<b>${'<i>'}</b>`}${[evil, 1]}</p>`.text;
    expect(out).toBe(
      `<p title="${escapeHtml(evil)}">${escapeHtml(evil)}<b>&lt;i&gt;</b>${escapeHtml(evil)}1</p>`,
    );
    expect(out).not.toContain('<script>');
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});

describe('sessions', () => {
  it('end at their expiry, and the oldest goes first when the store is full', () => {
    const s = createSessionStore({ ttlMs: 1000, max: 2 });
    const a = s.create(0);
    expect([s.valid(a.id, 999), s.valid(a.id, 1000)]).toEqual([true, false]);
    const b = s.create(0);
    const c = s.create(1);
    const d = s.create(2);
    expect([s.valid(b.id, 3), s.valid(c.id, 3), s.valid(d.id, 3)]).toEqual([false, true, true]);
    expect(s.size()).toBe(2);
    s.drop(c.id);
    expect(s.valid(c.id, 3)).toBe(false);
    expect(s.valid(`${d.id}x`, 3)).toBe(false);
    expect(s.valid(undefined, 3)).toBe(false);
  });
});

describe('the time filter', () => {
  it('reads RFC 3339, a date alone as its midnight, a time without a zone as UTC', () => {
    expect(parseTime('2026-12-06')).toBe('2026-12-06T00:00:00.000Z');
    expect(parseTime('2026-12-06T20:05')).toBe('2026-12-06T20:05:00.000Z');
    expect(parseTime('2026-12-06T20:05:01+02:00')).toBe('2026-12-06T18:05:01.000Z');
    expect(parseTime('2026-12-06t20:05:01.5z')).toBe('2026-12-06T20:05:01.500Z');
    for (const bad of ['yesterday', '2026-13-01', '2026-12-06T25:00', '1 Dec 2026'])
      expect(parseTime(bad)).toBeUndefined();
  });
});

describe('signing in', () => {
  it('signs in with an allowed token: a session cookie, never the token, and a redirect', async () => {
    const res = await login(await app({}), 't');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/ui/decisions');
    expect(res.headers['set-cookie']).toMatch(
      /^gate-ui=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/,
    );
  });

  it('lets nobody in when the server has no audit token', async () => {
    const res = await login(await app({ tokens: [] }), '');
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('nobody can sign in');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('refuses every page with TLS_REQUIRED over plain http beyond loopback', async () => {
    const a = await app({ refuseInClear: true });
    for (const res of [await a.inject('/ui/login'), await login(a, 't')]) {
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('TLS_REQUIRED');
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it('refuses a POST from a cross-site page even with a matching Origin', async () => {
    const res = await (
      await app({})
    ).inject({
      method: 'POST',
      url: '/ui/login',
      headers: {
        origin: 'http://localhost:80',
        host: 'localhost:80',
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: 'token=t',
    });
    expect(res.statusCode).toBe(403);
  });
});

describe('the ledger health page', () => {
  const health = (keyId: string) =>
    ledgerPage({
      backend: 'sqlite',
      verification: { ok: true, records: 4 } as never,
      verifiedUpTo: 4,
      checkpoints: [{ size: 4, headHash: 'ab'.repeat(32), time: 't', keyId, signature: 's' }],
      configuredKeyId: Buffer.from('cd'.repeat(32), 'hex').toString('base64'),
    }).toString();

  it('knows the configured key in a checkpoint, in the base64 form or the hex form older ledgers wrote', () => {
    const verdict = (page: string) => /Key<\/dt>\s*<dd>([^<]*)/.exec(page)?.[1];
    expect(verdict(health(Buffer.from('cd'.repeat(32), 'hex').toString('base64')))).toBe(
      'the configured key',
    );
    expect(verdict(health('cd'.repeat(32)))).toBe('the configured key');
    expect(verdict(health('ef'.repeat(32)))).toBe('not the configured key');
  });
});
