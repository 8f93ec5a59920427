import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecheckFixture, startWebhook, type RecheckFixture } from '../recheck/fixture.js';

/**
 * `gate serve --recheck-every 2s` as a user starts it (a child process): rechecks run on schedule
 * while the server keeps answering decisions; when the waiver of an allowed deployment expires, the
 * next recheck finds the drift, logs it and announces it to the webhook.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
let fx: RecheckFixture;
let hook: Awaited<ReturnType<typeof startWebhook>>;
let child: ChildProcess | undefined;

beforeAll(async () => {
  fx = await startRecheckFixture();
  hook = await startWebhook();
}, 60_000);
afterAll(async () => {
  child?.kill('SIGKILL');
  await hook?.close();
  await fx?.close();
});

async function post(url: string, hex: string): Promise<{ outcome: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subjects: [`sha256:${hex}`], environment: 'production' }),
  });
  const body = (await res.json()) as { outcome: string };
  return { outcome: body.outcome, ms: performance.now() - started };
}

describe('gate serve --recheck-every', () => {
  it('rechecks on schedule without holding up decisions, and announces the drift it finds', async () => {
    const expires = Date.now() + 9_000;
    const config = fx.writeConfig({ waiverExpires: new Date(expires), webhook: hook.url });
    const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config, '--port', '0'];
    args.push('--recheck-every', '2s', '--recheck-env', 'production', '--recheck-since', '1h');
    child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const poll = setInterval(() => {
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) {
          clearInterval(poll);
          resolve(m[1]!);
        }
      }, 25);
      void exited.then(() => reject(new Error(`gate serve exited: ${stderr}`)));
    });

    expect((await post(url, fx.vulnerable)).outcome).toBe('allow');
    // decisions go on all along: one every 100 ms until the drift is announced
    const answers: Array<{ outcome: string; ms: number }> = [];
    const until = Date.now() + 40_000;
    while (hook.bodies.length === 0 && Date.now() < until) {
      answers.push(await post(url, answers.length % 2 ? fx.clean : fx.unscanned));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(hook.bodies).toHaveLength(1);
    expect(Date.now()).toBeGreaterThanOrEqual(expires);
    // the recheck logs its line once its announcement has gone out: a moment after the webhook
    const doneNow = () =>
      stderr
        .split('\n')
        .filter((l) => l.includes('recheck done'))
        .map((l) => JSON.parse(l).recheck);
    while (doneNow().at(-1)?.drift !== 1 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    const logs = stderr.split('\n').filter((l) => l.includes('"recheck"'));
    const done = doneNow();
    // rechecks ran on schedule before the expiry, finding nothing, then one found the drift
    expect(done.length).toBeGreaterThanOrEqual(3);
    expect(done[0]).toMatchObject({ drift: 0, undecided: 0 });
    expect(done.at(-1)).toMatchObject({ drift: 1 });
    expect(done.at(-1).rechecked).toBeGreaterThanOrEqual(1);
    expect(logs.some((l) => l.includes(`drift in production: sha256:${fx.vulnerable}`))).toBe(true);
    expect(hook.bodies[0].text).toContain(`drift in production: sha256:${fx.vulnerable}`);

    // the next recheck finds the same drift and logs it, but does not announce it again
    const before = done.length;
    const more = () => stderr.split('\n').filter((l) => l.includes('recheck done')).length > before;
    while (!more() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const last = stderr
      .split('\n')
      .filter((l) => l.includes('recheck done'))
      .at(-1)!;
    expect(JSON.parse(last).recheck).toMatchObject({ drift: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.bodies).toHaveLength(1);

    // meanwhile every decision was answered, and fast
    expect(answers.length).toBeGreaterThan(30);
    expect(answers.map((a) => a.outcome)).toEqual(
      answers.map((_, i) => (i % 2 ? 'allow' : 'deny')),
    );
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(1500);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);
});
