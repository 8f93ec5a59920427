import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDecisions } from '../../src/audit/jsonl-reader.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import { dropTriggers } from '../audit/tamper.js';
import { normalise } from '../../src/config.js';
import type { Outcome } from '../../src/decision.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { tokenMatches } from '../../src/server/auth.js';
import { tokensFrom } from '../../src/cli/commands/serve.js';
import { createGate } from '../../src/gate.js';
import { FIXTURES } from '../helpers.js';
import { DIGEST, decisionFor, fakeGate, OTHER } from './fake-gate.js';

/**
 * Bearer tokens on the audit, break-glass and (optional) decisions routes, and the audit route
 * over a JSON Lines ledger written here in the format of src/audit/jsonl.ts. Fake gate, except
 * for replay, which needs decisions a real gate made and recorded. real-gate.test.ts reads a
 * ledger the real gate wrote.
 */
let dir: string;
let ledger: string;
const digestOf = (d: string) => ({ algorithm: 'sha256' as const, hex: d.slice(7) });

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-audit-'));
  ledger = path.join(dir, 'ledger.jsonl');
  const record = (subject: string, environment: string, outcome: Outcome, id: string) =>
    JSON.stringify({
      decision: decisionFor({ subjects: [{ digest: digestOf(subject) }], environment }, outcome, {
        id,
      }),
      input: {},
    });
  const lines = [
    record(DIGEST, 'dev', 'allow', 'd1'),
    record(OTHER, 'dev', 'deny', 'd2'),
    '{"decision": {"torn wri',
    record(DIGEST, 'production', 'deny', 'd3'),
    record(DIGEST, 'dev', 'error', 'd4'),
  ];
  writeFileSync(ledger, `${lines.join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const server = (opts: Partial<ServerOptions> = {}) =>
  createServer({
    gate: fakeGate(),
    config: normalise({ ledger: { backend: 'jsonl', path: ledger } }, dir, 'x'),
    ...opts,
  });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('bearer tokens', () => {
  const tokens = { audit: ['audit-1', 'audit-2'] };

  it.each([
    ['no token', {}, 401, 'UNAUTHORIZED'],
    ['a malformed header', { authorization: 'Basic YTpi' }, 401, 'UNAUTHORIZED'],
    ['a wrong token', bearer('audit-3'), 403, 'FORBIDDEN'],
    ["another route's token", bearer('bg-1'), 403, 'FORBIDDEN'],
  ])('refuses the audit route with %s', async (_what, headers, status, code) => {
    const app = server({ tokens });
    const res = await app.inject({ method: 'GET', url: '/v1/audit/decisions', headers });
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
    if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
    await app.close();
  });

  it('lets each allowed token through', async () => {
    const app = server({ tokens });
    for (const t of tokens.audit) {
      expect(
        (await app.inject({ method: 'GET', url: '/v1/audit/decisions', headers: bearer(t) }))
          .statusCode,
      ).toBe(200);
    }
    await app.close();
  });

  it('refuses everyone when no audit token is configured', async () => {
    const app = server();
    expect(
      (await app.inject({ method: 'GET', url: '/v1/audit/decisions', headers: bearer('') }))
        .statusCode,
    ).toBe(401);
    expect(
      (await app.inject({ method: 'GET', url: '/v1/audit/decisions', headers: bearer('x') }))
        .statusCode,
    ).toBe(403);
    await app.close();
  });

  it('guards any audit route, wherever it is registered, and leaves unknown urls 404', async () => {
    const app = server({ tokens });
    app.get('/v1/audit/extra', async () => ({ ok: true }));
    const at = (headers = {}, url = '/v1/audit/extra') =>
      app.inject({ method: 'GET', url, headers });
    expect((await at()).statusCode).toBe(401);
    expect((await at(bearer('x'))).statusCode).toBe(403);
    expect((await at(bearer('audit-1'))).json()).toEqual({ ok: true });
    expect((await at({}, '/v1/audit/nothing')).statusCode).toBe(404);
    // the break-glass routes have a token of their own: with none configured, nobody gets in
    expect((await at({}, '/v1/break-glass/req-00000001')).statusCode).toBe(401);
    expect((await at(bearer('audit-1'), '/v1/break-glass/req-00000001')).statusCode).toBe(403);
    await app.close();
  });

  it('leaves decisions open unless tokens are configured for them', async () => {
    const payload = { subjects: [DIGEST], environment: 'dev' };
    const open = server();
    expect((await open.inject({ method: 'POST', url: '/v1/decisions', payload })).statusCode).toBe(
      200,
    );
    await open.close();
    const closed = server({ tokens: { decisions: ['ci-1'] } });
    const at = (headers = {}) =>
      closed.inject({ method: 'POST', url: '/v1/decisions', payload, headers });
    expect((await at()).statusCode).toBe(401);
    expect((await at(bearer('ci-2'))).statusCode).toBe(403);
    expect((await at(bearer('ci-1'))).statusCode).toBe(200);
    await closed.close();
  });

  it('compares tokens by content, not prefix or length', () => {
    expect(tokenMatches('abc', ['abc'])).toBe(true);
    expect(tokenMatches('ab', ['abc'])).toBe(false);
    expect(tokenMatches('abcd', ['abc'])).toBe(false);
    expect(tokenMatches('abc', [])).toBe(false);
  });

  it('reads comma-separated tokens from the environment', () => {
    expect(
      tokensFrom({
        GATE_TOKEN_AUDIT: ' a, b ,,',
        GATE_TOKEN_DECISIONS: 'c',
        GATE_TOKEN_BREAK_GLASS: 'd',
      }),
    ).toEqual({
      audit: ['a', 'b'],
      decisions: ['c'],
      breakGlass: ['d'],
    });
  });
});

describe('GET /v1/audit/decisions', () => {
  const get = async (query: string) => {
    const app = server({ tokens: { audit: ['t'] } });
    const res = await app.inject({
      method: 'GET',
      url: `/v1/audit/decisions${query}`,
      headers: bearer('t'),
    });
    await app.close();
    return res;
  };
  const ids = async (query: string) =>
    (await get(query)).json().decisions.map((d: { id: string }) => d.id);

  it('lists decisions newest first, skipping a torn line', async () => {
    expect(await ids('')).toEqual(['d4', 'd3', 'd2', 'd1']);
  });

  it('filters by subject, environment and outcome, and limits', async () => {
    expect(await ids(`?subject=${DIGEST}`)).toEqual(['d4', 'd3', 'd1']);
    expect(await ids(`?subject=${DIGEST}&environment=dev`)).toEqual(['d4', 'd1']);
    expect(await ids('?outcome=deny')).toEqual(['d3', 'd2']);
    expect(await ids('?limit=2')).toEqual(['d4', 'd3']);
  });

  it.each([
    '?limit=0',
    '?limit=1001',
    '?limit=ten',
    '?outcome=maybe',
    '?subject=sha256:12',
    '?other=1',
  ])('refuses %s with 400', async (query) => {
    const res = await get(query);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('USAGE_ERROR');
  });

  it('reads a ledger that does not exist yet as empty, and keeps only the newest matches', async () => {
    expect(await readDecisions(path.join(dir, 'none.jsonl'), { limit: 10 })).toEqual({
      decisions: [],
      skipped: 0,
    });
    const { decisions, skipped } = await readDecisions(ledger, { limit: 1 });
    expect(decisions.map((d) => d.id)).toEqual(['d4']);
    expect(skipped).toBe(1);
  });

  it('answers 503 LEDGER_UNAVAILABLE when the ledger cannot be read', async () => {
    const app = createServer({
      gate: fakeGate(),
      config: normalise({ ledger: { backend: 'jsonl', path: dir } }, dir, 'x'),
      tokens: { audit: ['t'] },
    });
    const res = await app.inject({
      method: 'GET',
      url: '/v1/audit/decisions',
      headers: bearer('t'),
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('LEDGER_UNAVAILABLE');
    await app.close();
  });
});

describe('GET /v1/audit/verify', () => {
  it('verifies a json lines ledger as far as it can, and refuses what needs a chain', async () => {
    const app = server({ tokens: { audit: ['t'] } });
    const at = (url: string) => app.inject({ method: 'GET', url, headers: bearer('t') });
    expect((await at('/v1/audit/verify')).json()).toEqual({
      ok: true,
      records: 4,
      checkpoints: 0,
      chained: false,
    });
    const one = await at('/v1/audit/decisions/d1');
    expect(one.statusCode).toBe(400);
    expect(one.json().error.code).toBe('CONFIG_INVALID');
    await app.close();
  });

  it('cross-checks the indexes: a deleted subject row is named, with its code and table', async () => {
    const file = path.join(dir, 'verify.db');
    const l = createSqliteLedger({ path: file });
    for (const [i, id] of ['v1', 'v2'].entries())
      await l.append(
        decisionFor(
          { subjects: [{ digest: digestOf(DIGEST) }], environment: 'dev' },
          i ? 'deny' : 'allow',
          { id },
        ),
        {},
      );
    // the routes read the gate's own ledger: no second one is opened on the file
    const app = createServer({
      gate: { ...fakeGate(), ledger: l },
      config: normalise({ ledger: { path: file } }, dir, 'x'),
      tokens: { audit: ['t'] },
    });
    const verify = () =>
      app.inject({ method: 'GET', url: '/v1/audit/verify', headers: bearer('t') });
    expect((await verify()).json()).toEqual({ ok: true, records: 2, checkpoints: 0 });
    const db = new Database(file);
    dropTriggers(db);
    db.exec(`DELETE FROM subjects WHERE seq = 2`);
    db.close();
    expect((await verify()).json()).toMatchObject({
      ok: false,
      firstBroken: { seq: 2, id: 'v2', code: 'LEDGER_INDEX_MISMATCH', table: 'subjects' },
    });
    await app.close();
    await l.close();
  });
});

describe('GET /v1/audit/decisions/:id/replay', () => {
  const policy = (name: string) => path.join(FIXTURES, 'policies', name);
  const configWith = (name: string) =>
    normalise(
      { ledger: { path: path.join(dir, 'replay.db') }, policy: { path: policy(name) } },
      dir,
      'x',
    );
  let id: string;

  beforeAll(async () => {
    // decided and recorded by a real gate with the strict policy, which is then replaced
    const before = await createGate(configWith('requires-provenance'), { sources: () => [] });
    const subjects = [{ digest: digestOf(DIGEST) }];
    id = (await before.check({ subjects, environment: 'dev' })).id;
    await before.close();
  });

  it('replays with the policy of the time and the one served now, with both digests', async () => {
    const gate = await createGate(configWith('ok'), { sources: () => [] });
    const app = createServer({ gate, config: configWith('ok'), tokens: { audit: ['t'] } });
    const at = (url: string, headers: Record<string, string> = bearer('t')) =>
      app.inject({ method: 'GET', url, headers });
    const res = await at(`/v1/audit/decisions/${id}/replay`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      id,
      recorded: { allow: false, violations: ['test.provenance'] },
      then: { allow: false, violations: ['test.provenance'], same: true },
      now: { policy: gate.policy.digest, allow: true, violations: [], same: false },
      same: false,
    });
    expect(body.then.policy).toBe(body.recorded.policy);
    expect(body.then.policy).not.toBe(body.now.policy);
    const unknown = await at('/v1/audit/decisions/nope/replay');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toEqual({ code: 'NOT_FOUND', message: 'no decision nope' });
    expect((await at(`/v1/audit/decisions/${id}/replay`, {})).statusCode).toBe(401);
    await app.close();
  });
});
