import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { AUDIT_TOKEN, decide, hex, killChildren, serve, type Served } from './served.js';

/**
 * The web view over a PostgreSQL ledger (a real server on 127.0.0.1, test/support): the same
 * pages through the same AuditLedger as SQLite: the list, one decision, its replay, the health.
 */
let dir: string;
let pg: PostgresServer;
let served: Served;
let cookie: string;
let id: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-ui-postgres-'));
  pg = await startPostgresServer();
  const config = path.join(dir, 'gate.yaml');
  writeFileSync(config, JSON.stringify({ ledger: { backend: 'postgres', path: dir } }));
  served = await serve(config, undefined, { GATE_LEDGER_URL: await pg.createDatabase() });
  id = (await decide(served.origin, hex('ui over postgres'))).id;
  const res = await fetch(`${served.origin}/ui/login`, {
    method: 'POST',
    headers: { origin: served.origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${AUDIT_TOKEN}`,
    redirect: 'manual',
  });
  cookie = res.headers.get('set-cookie')!.split(';')[0]!;
});
afterAll(async () => {
  await served?.stop();
  killChildren();
  await pg?.close();
  rmSync(dir, { recursive: true, force: true });
});

const text = async (res: Response) => (await res.text()).replace(/\s+/g, ' ');
const get = (p: string) => fetch(`${served.origin}${p}`, { headers: { cookie } });

describe('the web view over a PostgreSQL ledger', () => {
  it('lists the decision and shows it in full, with its place in the chain', async () => {
    expect(await text(await get('/ui/decisions'))).toContain(id);
    const res = await get(`/ui/decisions/${id}`);
    expect(res.status).toBe(200);
    const page = await text(res);
    expect(page).toContain(`Decision ${id}`);
    expect(page).toMatch(/Ledger record<\/dt> ?<dd>1<\/dd>/);
  });

  it('replays it: same', async () => {
    const res = await fetch(`${served.origin}/ui/decisions/${id}/replay`, {
      method: 'POST',
      headers: { cookie, origin: served.origin },
    });
    expect(res.status).toBe(200);
    expect(await text(res)).toContain('Same: every evaluation agrees with the record.');
  });

  it('verifies the chain', async () => {
    const page = await text(await get('/ui/ledger'));
    expect(page).toContain('Verified: all 1 records');
    expect(page).toMatch(/Backend<\/dt> ?<dd>postgres<\/dd>/);
  });
});
