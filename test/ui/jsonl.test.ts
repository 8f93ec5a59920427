import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOKEN, decide, hex, killChildren, serve, type Served } from './served.js';

/**
 * The web view over a JSON Lines ledger, as /v1/audit reads one: the decisions are listed and the
 * ledger's health is shown (no chain: only its shape and single use checked); one decision and
 * its replay need a chained ledger, and say so.
 */
let dir: string;
let served: Served;
let cookie: string;
let id: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gate-ui-jsonl-'));
  const config = path.join(dir, 'gate.yaml');
  const ledger = { backend: 'jsonl', path: path.join(dir, 'ledger.jsonl') };
  writeFileSync(config, JSON.stringify({ ledger }));
  served = await serve(config);
  id = (await decide(served.origin, hex('ui over jsonl'))).id;
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
  rmSync(dir, { recursive: true, force: true });
});

const get = (p: string) => fetch(`${served.origin}${p}`, { headers: { cookie } });

describe('the web view over a JSON Lines ledger', () => {
  it('lists the decisions', async () => {
    const res = await get('/ui/decisions');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(id);
  });

  it('shows its health: no chain, the records checked for shape and single use', async () => {
    const text = (await (await get('/ui/ledger')).text()).replace(/\s+/g, ' ');
    expect(text).toContain(
      'No hash chain; the 1 records parse and each break-glass request was used once',
    );
    expect(text).toContain('A JSON Lines ledger has no checkpoints.');
  });

  it('says one decision needs a chained ledger, with a code', async () => {
    const res = await get(`/ui/decisions/${id}`);
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toContain('CONFIG_INVALID');
    expect(text).toContain('one decision and its replay need a sqlite or postgres ledger');
  });

  it('shows the break-glass page from its overrides (none here)', async () => {
    const res = await get('/ui/break-glass');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('No active break-glass request.');
  });
});
