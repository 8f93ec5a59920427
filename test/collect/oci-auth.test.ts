import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../src/config.js';
import { normalise } from '../../src/config.js';
import { createHttpClient, type HttpClient } from '../../src/collect/http.js';
import { HttpClientError } from '../../src/collect/http-support.js';
import { createOciSource, type OciSourceOptions } from '../../src/collect/oci.js';
import { TokenCache, type Login } from '../../src/collect/oci-auth.js';
import {
  createKeychain,
  mayCarryCredentials,
  registryKey,
  type Credential,
} from '../../src/collect/oci-credentials.js';
import { defaultSources } from '../../src/collect/sources.js';
import type { CollectResult } from '../../src/collect/types.js';
import {
  BUNDLE_V03,
  pushBundleArtifact,
  pushImage,
  pushReferrersTag,
  type Descriptor,
} from '../support/registry-push.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { startShim, type RegistryShim, type ShimOptions } from '../support/registry-shim.js';

// Registry credentials as users have them (docker's config.json, credential helpers, a token in
// the environment), over real HTTP: the shim on 127.0.0.1 asks for them in front of the real
// registry (crane registry serve), which holds the image and its bundle artifact.

let registry: RegistryServer;
const http = createHttpClient({ retries: 0 });
const shims: RegistryShim[] = [];
const tmp = mkdtempSync(path.join(tmpdir(), 'gate-oci-auth-'));

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await Promise.all(shims.map((s) => s.close()));
  await registry?.close();
  await http.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function shim(opts: ShimOptions = {}): Promise<RegistryShim> {
  const s = await startShim(registry.url, opts);
  shims.push(s);
  return s;
}

let n = 0;
/** An image with one bundle artifact, found through the referrers tag schema. */
async function imageWithBundle(repo: string): Promise<{ image: Descriptor; bundle: Buffer }> {
  const image = await pushImage(registry.url, repo);
  const bundle = Buffer.from(JSON.stringify({ mediaType: BUNDLE_V03, n: n++, repo }));
  const ref = await pushBundleArtifact(registry.url, repo, image, bundle);
  await pushReferrersTag(registry.url, repo, image.digest, [ref]);
  return { image, bundle };
}

async function collect(
  host: string,
  repo: string,
  image: Descriptor,
  o: Partial<OciSourceOptions> = {},
): Promise<CollectResult> {
  // env: {} unless a test gives one: the machine's own ~/.docker never takes part
  const source = createOciSource({
    repositories: [`${host}/${repo}`],
    http,
    retries: 0,
    env: {},
    ...o,
  });
  try {
    return await source.collect({ subject: { algorithm: 'sha256', hex: image.digest.slice(7) } });
  } finally {
    await source.close();
  }
}

/** A HOME whose ~/.docker/config.json is `config`. */
function home(config: unknown): Environment {
  const dir = mkdtempSync(path.join(tmp, 'home-'));
  mkdirSync(path.join(dir, '.docker'));
  writeFileSync(path.join(dir, '.docker', 'config.json'), JSON.stringify(config));
  return { HOME: dir };
}

/** A folder holding an executable `docker-credential-<name>` running `body` under /bin/sh. */
function helper(name: string, body: string): string {
  const bin = mkdtempSync(path.join(tmp, 'bin-'));
  const file = path.join(bin, `docker-credential-${name}`);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return bin;
}
const withPath = (env: Environment, ...bins: string[]): Environment => ({
  ...env,
  PATH: [...bins, process.env.PATH ?? '/usr/bin:/bin'].join(path.delimiter),
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const basic = (user: string, pass: string) => `Basic ${b64(`${user}:${pass}`)}`;

/** Every message the source gave: none may hold a secret, in clear or as basic auth carries it. */
function expectNoSecrets(r: CollectResult, secrets: string[]): void {
  const text = JSON.stringify([r.failures, r.rejected]);
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text).not.toContain(b64(s));
  }
}

function expectFound(r: CollectResult, bundle: Buffer): void {
  expect(r.failures).toEqual([]);
  expect(r.evidence.map((e) => e.bytes.toString())).toEqual([bundle.toString()]);
}

function expectAuthFailed(r: CollectResult, ...fragments: string[]): void {
  expect(r.evidence).toEqual([]);
  expect(r.failures.length).toBeGreaterThan(0);
  for (const f of r.failures) {
    expect(f.code).toBe('SOURCE_AUTH_FAILED');
    for (const x of fragments) expect(f.message).toContain(x);
  }
}

describe('config.json auths', () => {
  it('answers a basic challenge with the base64 auth of an entry keyed http://host', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'ann', password: 'pw-a1' } });
    const { image, bundle } = await imageWithBundle('auths/basic');
    const env = home({ auths: { [`http://${front.host}`]: { auth: b64('ann:pw-a1') } } });
    const r = await collect(front.host, 'auths/basic', image, { env });
    expectFound(r, bundle);
    expect(front.authorizations).toContain(basic('ann', 'pw-a1'));
  });

  it('gets a token from the realm with username and password (an entry keyed https://host/v1/)', async () => {
    const login = { scheme: 'bearer' as const, username: 'bob', password: 'pw-b2' };
    const front = await shim({ login });
    const { image, bundle } = await imageWithBundle('auths/userpass');
    const env = home({
      auths: { [`https://${front.host}/v1/`]: { username: 'bob', password: 'pw-b2' } },
    });
    const r = await collect(front.host, 'auths/userpass', image, { env });
    expectFound(r, bundle);
    const tokenAsks = front.seen.flatMap((l, i) =>
      l.startsWith('GET /token') ? [front.authorizations[i]] : [],
    );
    expect(tokenAsks).toEqual([basic('bob', 'pw-b2')]);
    // the credentials went to the realm only: the registry saw the token it issued
    const registryAuth = front.authorizations.filter((a, i) => !front.seen[i]!.includes('/token'));
    expect(registryAuth.filter((a) => a.startsWith('Basic'))).toEqual([]);
  });

  it('posts an identity token to the realm as a refresh_token grant', async () => {
    const login = {
      scheme: 'bearer' as const,
      username: 'x',
      password: 'unused',
      refreshToken: 'refresh-c3',
    };
    const front = await shim({ login });
    const { image, bundle } = await imageWithBundle('auths/identity');
    const env = home({ auths: { [front.host]: { identitytoken: 'refresh-c3' } } });
    const r = await collect(front.host, 'auths/identity', image, { env });
    expectFound(r, bundle);
    expect(front.seen.filter((l) => l.startsWith('POST /token'))).toHaveLength(1);
    expect(front.seen.filter((l) => l.startsWith('GET /token'))).toEqual([]);
  });

  it('falls back to the GET with basic auth when the realm has no OAuth2 flow (404)', async () => {
    const login = {
      scheme: 'bearer' as const,
      username: 'dan',
      password: 'pw-d4',
      refreshToken: 'refresh-d4',
      noOAuth: true,
    };
    const front = await shim({ login });
    const { image, bundle } = await imageWithBundle('auths/fallback');
    const env = home({
      auths: { [front.host]: { auth: b64('dan:pw-d4'), identitytoken: 'refresh-d4' } },
    });
    const r = await collect(front.host, 'auths/fallback', image, { env });
    expectFound(r, bundle);
    expect(front.seen.filter((l) => l.includes('/token')).map((l) => l.slice(0, 10))).toEqual([
      'POST /toke',
      'GET /token',
    ]);
  });

  it('sends a registrytoken to the registry as it is', async () => {
    const front = await shim({ bearerToken: 'registry-e5' });
    const { image, bundle } = await imageWithBundle('auths/registrytoken');
    const env = home({ auths: { [front.host]: { registrytoken: 'registry-e5' } } });
    const r = await collect(front.host, 'auths/registrytoken', image, { env });
    expectFound(r, bundle);
    expect(front.authorizations).toContain('Bearer registry-e5');
    expect(front.seen.filter((l) => l.includes('/token'))).toEqual([]);
  });

  it('reads $DOCKER_CONFIG/config.json before ~/.docker/config.json', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'eve', password: 'pw-f6' } });
    const { image, bundle } = await imageWithBundle('auths/dockerconfig');
    const dir = mkdtempSync(path.join(tmp, 'dc-'));
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ auths: { [front.host]: { username: 'eve', password: 'pw-f6' } } }),
    );
    const wrongHome = home({ auths: { [front.host]: { username: 'eve', password: 'wrong' } } });
    const r = await collect(front.host, 'auths/dockerconfig', image, {
      env: { ...wrongHome, DOCKER_CONFIG: dir },
    });
    expectFound(r, bundle);
  });
});

describe('credential helpers', () => {
  it('runs credHelpers[host] with the host on stdin', async () => {
    const front = await shim({ login: { scheme: 'bearer', username: 'gus', password: 'pw-g7' } });
    const { image, bundle } = await imageWithBundle('helpers/named');
    const bin = helper(
      'test',
      `read -r server
if [ "$server" = "${front.host}" ]; then
  printf '{"ServerURL":"%s","Username":"gus","Secret":"pw-g7"}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi`,
    );
    const env = withPath(home({ credHelpers: { [front.host]: 'test' } }), bin);
    const r = await collect(front.host, 'helpers/named', image, { env });
    expectFound(r, bundle);
    expect(front.authorizations).toContain(basic('gus', 'pw-g7'));
  });

  it('runs the credsStore for a host without its own helper, once per host', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'hal', password: 'pw-h8' } });
    const { image, bundle } = await imageWithBundle('helpers/store');
    const runs = path.join(tmp, `runs-${Date.now()}`);
    const bin = helper(
      'store',
      `echo run >> "${runs}"
printf '{"ServerURL":"x","Username":"hal","Secret":"pw-h8"}'`,
    );
    const env = withPath(home({ credsStore: 'store', auths: { [front.host]: {} } }), bin);
    const r = await collect(front.host, 'helpers/store', image, { env });
    expectFound(r, bundle);
    expect(readFileSync(runs, 'utf8').trim().split('\n')).toEqual(['run']);
  });

  it('takes a <token> answer as an identity token', async () => {
    const front = await shim({
      login: { scheme: 'bearer', username: 'x', password: 'y', refreshToken: 'refresh-i9' },
    });
    const { image, bundle } = await imageWithBundle('helpers/token');
    const bin = helper(
      'tok',
      `printf '{"ServerURL":"x","Username":"<token>","Secret":"refresh-i9"}'`,
    );
    const env = withPath(home({ credHelpers: { [front.host]: 'tok' } }), bin);
    const r = await collect(front.host, 'helpers/token', image, { env });
    expectFound(r, bundle);
    expect(front.seen.filter((l) => l.startsWith('POST /token'))).toHaveLength(1);
  });

  it('reads anonymously when the helper has no credentials for the host', async () => {
    const front = await shim({ auth: true });
    const { image, bundle } = await imageWithBundle('helpers/notfound');
    const asked = path.join(tmp, `asked-${Date.now()}`);
    const bin = helper(
      'none',
      `cat > "${asked}"
echo "credentials not found in native keychain"
exit 1`,
    );
    const env = withPath(home({ credsStore: 'none' }), bin);
    const r = await collect(front.host, 'helpers/notfound', image, { env });
    expectFound(r, bundle);
    expect(readFileSync(asked, 'utf8')).toBe(front.host);
    expect(front.authorizations).toContain('Bearer anonymous-pull-token');
  });

  it('fails naming the helper, never its output, when the helper crashes', async () => {
    const front = await shim({ auth: true });
    const { image } = await imageWithBundle('helpers/crash');
    const bin = helper(
      'crash',
      `echo '{"ServerURL":"x","Username":"kim","Secret":"leaked-j10"}'
echo "leaked-j10" >&2
exit 3`,
    );
    const env = withPath(home({ credHelpers: { [front.host]: 'crash' } }), bin);
    const r = await collect(front.host, 'helpers/crash', image, { env });
    expectAuthFailed(r, 'docker-credential-crash', `credHelpers ${front.host}`, 'exit code 3');
    expectNoSecrets(r, ['leaked-j10']);
  });

  it('fails when the helper answers something that is not json, without quoting it', async () => {
    const front = await shim({ auth: true });
    const { image } = await imageWithBundle('helpers/garbage');
    const bin = helper('garbage', `echo "user=kim secret=leaked-k11"`);
    const env = withPath(home({ credsStore: 'garbage' }), bin);
    const r = await collect(front.host, 'helpers/garbage', image, { env });
    expectAuthFailed(r, 'docker-credential-garbage', 'no json');
    expectNoSecrets(r, ['leaked-k11']);
  });

  it('fails when the helper is not on PATH', async () => {
    const front = await shim({ auth: true });
    const { image } = await imageWithBundle('helpers/missing');
    const env = withPath(home({ credsStore: 'gate-test-absent' }));
    const r = await collect(front.host, 'helpers/missing', image, { env });
    expectAuthFailed(r, 'docker-credential-gate-test-absent', 'not on PATH');
  });

  it('fails when the helper does not answer in time', async () => {
    const front = await shim({ auth: true });
    const { image } = await imageWithBundle('helpers/slow');
    const bin = helper('slow', 'exec sleep 5');
    const env = withPath(home({ credsStore: 'slow' }), bin);
    const r = await collect(front.host, 'helpers/slow', image, { env, helperTimeoutMs: 200 });
    expectAuthFailed(r, 'docker-credential-slow', 'within 200 ms');
  });
});

describe('credentials the registry refuses', () => {
  it('is SOURCE_AUTH_FAILED naming the host and where the password came from', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'lou', password: 'right' } });
    const { image } = await imageWithBundle('refused/basic');
    const env = home({ auths: { [front.host]: { username: 'lou', password: 'wrong-l12' } } });
    const r = await collect(front.host, 'refused/basic', image, { env });
    expectAuthFailed(r, `refused the credentials from auths ${front.host}`, env.HOME!, 'http 401');
    expectNoSecrets(r, ['wrong-l12', 'lou:wrong-l12']);
  });

  it('is SOURCE_AUTH_FAILED when the token realm refuses them', async () => {
    const front = await shim({ login: { scheme: 'bearer', username: 'max', password: 'right' } });
    const { image } = await imageWithBundle('refused/realm');
    const env = home({ auths: { [front.host]: { auth: b64('max:wrong-m13') } } });
    const r = await collect(front.host, 'refused/realm', image, { env });
    expectAuthFailed(r, 'token endpoint', `auths ${front.host}`, front.host);
    expectNoSecrets(r, ['wrong-m13', 'max:wrong-m13']);
  });

  it('is SOURCE_AUTH_FAILED, saying where it looked, for a basic challenge without credentials', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'ned', password: 'pw' } });
    const { image } = await imageWithBundle('refused/none');
    const env = home({ auths: {} });
    const r = await collect(front.host, 'refused/none', image, { env });
    expectAuthFailed(r, 'basic authentication', `no credentials for ${front.host}`, env.HOME!);
  });

  it('is SOURCE_AUTH_FAILED when a configured docker config cannot be read', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'ola', password: 'pw' } });
    const { image } = await imageWithBundle('refused/noconfig');
    const missing = path.join(tmp, 'nowhere', 'config.json');
    const r = await collect(front.host, 'refused/noconfig', image, { dockerConfig: missing });
    expectAuthFailed(r, missing, 'enoent');
  });

  it('never quotes a config.json that is not json', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'pat', password: 'pw' } });
    const { image } = await imageWithBundle('refused/badjson');
    const file = path.join(tmp, 'bad-config.json');
    writeFileSync(file, '{"auths": {"x": {"auth": "secret-p14"}');
    const r = await collect(front.host, 'refused/badjson', image, { dockerConfig: file });
    expectAuthFailed(r, 'not valid json');
    expectNoSecrets(r, ['secret-p14']);
  });
});

describe('a bearer token from the environment (sources.oci.tokenEnv)', () => {
  it('is sent to the registry as it is', async () => {
    const front = await shim({ bearerToken: 'env-q15' });
    const { image, bundle } = await imageWithBundle('env/token');
    const r = await collect(front.host, 'env/token', image, {
      tokenEnv: { [front.host]: 'REG_TOKEN' },
      tokens: { [front.host]: 'env-q15' },
      // the environment token wins over config.json
      env: home({ auths: { [front.host]: { username: 'u', password: 'p' } } }),
    });
    expectFound(r, bundle);
    expect(front.authorizations).toContain('Bearer env-q15');
    expect(front.authorizations.filter((a) => a.startsWith('Basic'))).toEqual([]);
  });

  it('is SOURCE_AUTH_FAILED naming the variable, not the token, when refused', async () => {
    const front = await shim({ bearerToken: 'right' });
    const { image } = await imageWithBundle('env/refused');
    const r = await collect(front.host, 'env/refused', image, {
      tokenEnv: { [front.host]: 'REG_TOKEN' },
      tokens: { [front.host]: 'wrong-r16' },
    });
    expectAuthFailed(r, 'environment variable REG_TOKEN', front.host);
    expectNoSecrets(r, ['wrong-r16']);
  });

  it('comes from the variable the configuration names, read by the loader', async () => {
    const front = await shim({ bearerToken: 'env-s17' });
    const { image, bundle } = await imageWithBundle('env/loaded');
    const config = normalise(
      {
        sources: {
          oci: {
            repositories: [`${front.host}/env/loaded`],
            tokenEnv: { [front.host]: 'REG_TOKEN' },
          },
        },
      },
      tmp,
      'x',
      'config',
      { REG_TOKEN: 'env-s17' },
    );
    const [source] = await defaultSources(config.sources, [], http);
    const r = await source!.collect({
      subject: { algorithm: 'sha256', hex: image.digest.slice(7) },
    });
    expectFound(r, bundle);
  });
});

describe('configuration', () => {
  it('resolves dockerConfig against the config file and reads tokens from the environment', () => {
    const env = { GHCR_TOKEN: 'tok', HOME: '/home/u' };
    const c = normalise(
      {
        sources: {
          oci: {
            repositories: ['ghcr.io/acme/app'],
            dockerConfig: 'creds/config.json',
            tokenEnv: { 'GHCR.io': 'GHCR_TOKEN', 'reg.lan:5000': 'UNSET_TOKEN' },
          },
        },
      },
      '/etc/gate',
      'x',
      'config',
      env,
    );
    expect(c.sources.oci).toMatchObject({
      dockerConfig: '/etc/gate/creds/config.json',
      tokens: { 'ghcr.io': 'tok' },
      env,
    });
    expect(Object.keys(c.sources.oci!.tokens!)).toEqual(['ghcr.io']);
  });

  it('refuses a token written in the file and a variable name that is not one', () => {
    const oci = (extra: object) => ({
      sources: { oci: { repositories: ['ghcr.io/acme/app'], ...extra } },
    });
    for (const bad of [
      { tokens: { 'ghcr.io': 'tok' } },
      { tokenEnv: { 'ghcr.io': 'not a name' } },
      { tokenEnv: { 'https://ghcr.io': 'GHCR_TOKEN' } },
      { dockerConfig: '' },
    ]) {
      expect(() => normalise(oci(bad), '/', 'x')).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });

  it('reaches the source through the loaded configuration (dockerConfig)', async () => {
    const front = await shim({ login: { scheme: 'basic', username: 'uma', password: 'pw-t18' } });
    const { image, bundle } = await imageWithBundle('conf/dockerconfig');
    const dir = mkdtempSync(path.join(tmp, 'conf-'));
    writeFileSync(
      path.join(dir, 'registry-auth.json'),
      JSON.stringify({ auths: { [front.host]: { auth: b64('uma:pw-t18') } } }),
    );
    const config = normalise(
      {
        sources: {
          oci: {
            repositories: [`${front.host}/conf/dockerconfig`],
            dockerConfig: 'registry-auth.json',
          },
        },
      },
      dir,
      'x',
    );
    const [source] = await defaultSources(config.sources, [], http);
    const r = await source!.collect({
      subject: { algorithm: 'sha256', hex: image.digest.slice(7) },
    });
    expectFound(r, bundle);
  });
});

describe('the keychain', () => {
  it('reads config.json keys the way docker does', () => {
    expect(registryKey('https://ghcr.io')).toBe('ghcr.io');
    expect(registryKey('http://reg.lan:5000')).toBe('reg.lan:5000');
    expect(registryKey('https://Quay.io/v1/')).toBe('quay.io');
    expect(registryKey('ghcr.io')).toBe('ghcr.io');
    expect(registryKey('https://index.docker.io/v1/')).toBe('index.docker.io');
    expect(registryKey('registry-1.docker.io')).toBe('index.docker.io');
    expect(registryKey('docker.io')).toBe('index.docker.io');
  });

  it("finds Docker Hub's https://index.docker.io/v1/ entry for its registry hosts", async () => {
    const env = home({ auths: { 'https://index.docker.io/v1/': { auth: b64('vic:pw-u19') } } });
    const k = createKeychain({ env });
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      expect(await k.resolve(host)).toMatchObject({
        kind: 'basic',
        username: 'vic',
        password: 'pw-u19',
      });
    }
    expect(await k.resolve('ghcr.io')).toBeUndefined();
  });

  it('gives Docker Hub helpers the server URL docker gives them', async () => {
    const asked = path.join(tmp, `hub-${Date.now()}`);
    const bin = helper('hub', `cat > "${asked}"; printf '{"Username":"w","Secret":"s"}'`);
    const k = createKeychain({ env: withPath(home({ credsStore: 'hub' }), bin) });
    expect(await k.resolve('registry-1.docker.io')).toMatchObject({ kind: 'basic' });
    expect(readFileSync(asked, 'utf8')).toBe('https://index.docker.io/v1/');
  });

  it('has no credentials without DOCKER_CONFIG, HOME or a file there', async () => {
    expect(await createKeychain({ env: {} }).resolve('ghcr.io')).toBeUndefined();
    const empty = mkdtempSync(path.join(tmp, 'empty-'));
    expect(existsSync(path.join(empty, '.docker'))).toBe(false);
    expect(await createKeychain({ env: { HOME: empty } }).resolve('ghcr.io')).toBeUndefined();
  });

  it('refuses an auth field that is not base64 of user:password, without quoting it', async () => {
    const env = home({ auths: { 'ghcr.io': { auth: 'bm9jb2xvbg==' } } }); // "nocolon"
    await expect(createKeychain({ env }).resolve('ghcr.io')).rejects.toMatchObject({
      code: 'SOURCE_AUTH_FAILED',
      message: expect.not.stringContaining('bm9jb2xvbg'),
    });
  });
});

describe('where credentials may go', () => {
  it('goes over https anywhere, plain http only to loopback or the insecure registry itself', () => {
    const u = (s: string) => new URL(s);
    expect(mayCarryCredentials(u('https://auth.example/token'), 'reg.lan:5000', [])).toBe(true);
    expect(mayCarryCredentials(u('http://127.0.0.1:9/token'), 'reg.lan:5000', [])).toBe(true);
    expect(
      mayCarryCredentials(u('http://reg.lan:5000/token'), 'reg.lan:5000', ['reg.lan:5000']),
    ).toBe(true);
    // another host over plain http: never, even when that host is configured insecure
    expect(
      mayCarryCredentials(u('http://auth.lan:8080/token'), 'reg.lan:5000', [
        'reg.lan:5000',
        'auth.lan:8080',
      ]),
    ).toBe(false);
    expect(mayCarryCredentials(u('http://reg.lan:5000/token'), 'reg.lan:5000', [])).toBe(false);
    expect(mayCarryCredentials(u('ftp://reg.lan/token'), 'reg.lan', ['reg.lan'])).toBe(false);
  });

  /** An HttpClient that records what the token cache asks and answers a fresh token each time. */
  function recorder(): { http: HttpClient; asked: Array<{ url: string; auth?: string }> } {
    const asked: Array<{ url: string; auth?: string }> = [];
    const answer = async (url: string, opts?: { headers?: Record<string, string> }) => {
      asked.push({ url, auth: opts?.headers?.authorization });
      return { token: `t${asked.length}` };
    };
    const http = {
      getJSON: answer,
      postJSON: (url: string, _b: unknown, opts?: { headers?: Record<string, string> }) =>
        answer(url, opts),
      getBytes: () => Promise.reject(new HttpClientError('SOURCE_BAD_RESPONSE', 'unused')),
      requestJSON: () => Promise.reject(new HttpClientError('SOURCE_BAD_RESPONSE', 'unused')),
      close: async () => {},
    } as HttpClient;
    return { http, asked };
  }
  it('never sends credentials to a plain-http realm on another host', async () => {
    const { http, asked } = recorder();
    const tokens = new TokenCache(http, ['reg.lan:5000', 'auth.lan:8080'], 1000);
    const challenge = { scheme: 'bearer', params: { realm: 'http://auth.lan:8080/token' } };
    const login = {
      registry: 'reg.lan:5000',
      credential: await basicCredential('ann', 'pw-v20'),
    } as Login;
    await expect(
      tokens.token(challenge, 'repository:a:pull', undefined, login),
    ).rejects.toMatchObject({ code: 'SOURCE_INSECURE_TRANSPORT' });
    expect(asked).toEqual([]);
    // anonymously the same realm is asked (it is configured insecure): only credentials are held back
    await expect(tokens.token(challenge, 'repository:a:pull')).resolves.toBe('t1');
    expect(asked).toEqual([
      { url: expect.stringContaining('http://auth.lan:8080/token?'), auth: undefined },
    ]);
  });

  it('keeps a token per credential: two logins never share one', async () => {
    const { http, asked } = recorder();
    const tokens = new TokenCache(http, [], 1000);
    const challenge = { scheme: 'bearer', params: { realm: 'https://auth.example/token' } };
    const a = {
      registry: 'reg.example',
      credential: await basicCredential('ann', 'pw-1'),
    } as Login;
    const b = {
      registry: 'reg.example',
      credential: await basicCredential('ann', 'pw-2'),
    } as Login;
    const scope = 'repository:a:pull';
    expect(await tokens.token(challenge, scope, undefined, a)).toBe('t1');
    expect(await tokens.token(challenge, scope, undefined, b)).toBe('t2');
    expect(await tokens.token(challenge, scope)).toBe('t3');
    expect(await tokens.token(challenge, scope, undefined, a)).toBe('t1');
    expect(asked.map((x) => x.auth)).toEqual([
      basic('ann', 'pw-1'),
      basic('ann', 'pw-2'),
      undefined,
    ]);
  });
});

/** A basic credential as the keychain makes it (from a config.json entry). */
async function basicCredential(username: string, password: string): Promise<Credential> {
  const file = path.join(mkdtempSync(path.join(tmp, 'cred-')), 'config.json');
  writeFileSync(file, JSON.stringify({ auths: { h: { username, password } } }));
  const c = await createKeychain({ dockerConfig: file }).resolve('h');
  if (!c) throw new Error('no credential');
  return c;
}
