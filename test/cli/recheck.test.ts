import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers.js';
import { CVE, startRecheckFixture, startWebhook, type RecheckFixture } from '../recheck/fixture.js';

/**
 * `gate recheck` as a user runs it, on the real clock: a deployment allowed under a waiver that
 * expires a few seconds later is unchanged before, drift after (exit 1, text and json), each
 * recheck recorded and shown by `gate audit show`, the drift announced to a webhook.
 */
let fx: RecheckFixture;
let hook: Awaited<ReturnType<typeof startWebhook>>;
let config: string;
let expires: number;

beforeAll(async () => {
  fx = await startRecheckFixture();
  hook = await startWebhook();
  expires = Date.now() + 8_000;
  config = fx.writeConfig({ waiverExpires: new Date(expires), webhook: hook.url });
}, 60_000);
afterAll(async () => {
  await hook?.close();
  await fx?.close();
});

const gate = (...args: string[]) => cli(args, fx.dir);

describe('gate recheck', () => {
  let allowed: string;

  it('re-decides what was allowed: nothing changed while the waiver holds (exit 0)', async () => {
    const args = ['--config', config, '--env', 'production', '--format', 'json'];
    const v = await gate('check', '--subject', `sha256:${fx.vulnerable}`, ...args);
    expect(v.code).toBe(0);
    allowed = JSON.parse(v.stdout).id;
    expect((await gate('check', '--subject', `sha256:${fx.unscanned}`, ...args)).code).toBe(1);

    const r = await gate('recheck', '--config', config, '--env', 'production');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(
      /^recheck of production \(decisions from .* to .*\): 1 rechecked, 0 drift, 0 undecided\n/,
    );
    expect(r.stdout).toContain(`unchanged sha256:${fx.vulnerable}: was allow (${allowed} at `);
    expect(hook.bodies).toEqual([]);
  }, 30_000);

  it('finds drift once the waiver has expired: exit 1, why, recorded and linked, announced', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 100)));
    const text = await gate('recheck', '--config', config, '--env', 'production', '--since', '1h');
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('1 rechecked, 1 drift, 0 undecided');
    expect(text.stdout).toContain(`drift     sha256:${fx.vulnerable}: was allow (${allowed} at `);
    expect(text.stdout).toContain(`- vulnerabilities.severity: vulnerability ${CVE} (critical)`);
    expect(text.stdout).toContain('its waiver expired at');

    const json = await gate(
      'recheck',
      ...['--config', config, '--env', 'production', '--format', 'json'],
    );
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ environment: 'production', rechecked: 1, drift: 1 });
    const [item] = report.items;
    expect(item).toMatchObject({
      status: 'drift',
      subjects: [`sha256:${fx.vulnerable}`],
      was: { id: allowed, outcome: 'allow' },
      recheck: { outcome: 'deny', violations: [{ id: 'vulnerabilities.severity' }] },
    });

    // the recheck is a record of its own, linked to the decision it rechecked
    const show = await gate(
      'audit',
      'show',
      item.recheck.id,
      '--config',
      config,
      '--format',
      'json',
    );
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout).decision).toMatchObject({
      id: item.recheck.id,
      outcome: 'deny',
      recheckOf: { id: allowed, outcome: 'allow' },
    });

    // each drift found is announced (two rechecks, two announcements), delivered to the webhook
    expect(hook.bodies.map((b) => b.drift.was.id)).toEqual([allowed, allowed]);
    expect(hook.bodies[1].text).toContain('would now be denied');
  }, 30_000);

  it('honours --since: a deployment older than the window is not rechecked', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const r = await gate('recheck', '--config', config, '--env', 'production', '--since', '1s');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(': 0 rechecked, 0 drift, 0 undecided');
  });

  it('needs a ledger it can query, and gate serve refuses recheck flags without a schedule', async () => {
    writeFileSync(
      path.join(fx.dir, 'jsonl.yaml'),
      JSON.stringify({ ledger: { backend: 'jsonl', path: 'ledger.jsonl' } }),
    );
    const jsonl = await gate('recheck', '--config', 'jsonl.yaml', '--env', 'production');
    expect([jsonl.code, jsonl.stderr]).toEqual([
      2,
      'gate: USAGE_ERROR: recheck reads the ledger: configure a sqlite or postgres ledger (a json lines ledger cannot be queried)\n',
    ]);
    const serve = (...flags: string[]) =>
      gate('serve', '--config', config, '--port', '0', ...flags);
    expect(await serve('--recheck-env', 'production')).toMatchObject({
      code: 2,
      stderr: 'gate: USAGE_ERROR: --recheck-env goes with --recheck-every\n',
    });
    expect(await serve('--recheck-every', '1x')).toMatchObject({
      code: 2,
      stderr:
        'gate: USAGE_ERROR: --recheck-every must be a whole number of s, m, h or d (like 7d or 1h), got "1x"\n',
    });
  }, 30_000);

  it('refuses bad usage with a coded line (exit 2)', async () => {
    const noEnv = await gate('recheck', '--config', config);
    expect(noEnv.code).toBe(2);
    const since = await gate('recheck', '--config', config, '--env', 'production', '--since', '2w');
    expect([since.code, since.stderr]).toEqual([
      2,
      'gate: USAGE_ERROR: --since must be a whole number of s, m, h or d (like 7d or 1h), got "2w"\n',
    ]);
  });
});
