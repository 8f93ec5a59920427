import type { FastifyInstance } from 'fastify';
import { loadConfig, type Environment, type GateConfig } from '../../config.js';
import { GateError } from '../../errors.js';
import { createGate, type Gate } from '../../gate.js';
import { serveRechecks } from '../../recheck.js';
import { createServer, type ServerOptions } from '../../server/app.js';
import { checkExposure, isLoopback } from '../../server/exposure.js';
import { closeGracefully } from '../../server/shutdown.js';
import {
  readTlsPair,
  reloadTlsOnChange,
  type TlsFiles,
  type TlsPair,
  type TlsReloader,
} from '../../server/tls.js';
import { EXIT, type CommandIO, reportError } from '../io.js';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  envDefault?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** re-decide what was allowed this often (src/recheck.ts), over the last recheckSince */
  recheckEvery?: string;
  recheckSince?: string;
  recheckEnv?: string;
}

/**
 * `gate serve`: the HTTP(S) server until SIGTERM or SIGINT, then a graceful shutdown. Logs (JSON
 * lines) go to stderr. Tokens come from the environment, never from flags, which other users
 * of the machine can read in the process list.
 */
export async function serveCommand(opts: ServeOptions, io: CommandIO): Promise<number> {
  const env = io.env ?? process.env;
  let server: FastifyInstance | undefined;
  let reloader: TlsReloader | undefined;
  try {
    const config = loadConfig(opts.config, { cwd: io.cwd, env });
    const host = opts.host ?? '127.0.0.1';
    const port = parsePort(opts.port ?? '8080');
    const tlsFiles = tlsFilesOf(opts);
    const tokens = tokensFrom(env);
    // Before anything is opened: a server that must not start should say so at once.
    checkExposure({
      host,
      tls: tlsFiles !== undefined,
      decisionsToken: tokens.decisions.length > 0,
      openDecisions: config.server.openDecisions,
    });
    const tls = tlsFiles ? readTlsPair(tlsFiles) : undefined;
    let ready = false;
    const built = await build(config, opts, io, { tokens, tls, host, ready: () => ready });
    server = built.server;
    // rechecks stop (the one in progress finishes its decision) before the server drains
    const rechecks = serveRechecks(built.gate, opts, server.log);
    if (rechecks) server.addHook('preClose', () => rechecks.stop());
    await server.listen({ host, port });
    server.log.info(
      `web view at ${server.listeningOrigin}/ui/${tokens.audit?.length ? '' : ' (no GATE_TOKEN_AUDIT: nobody can sign in)'}`,
    );
    if (!isLoopback(host) && !tls && tokens.audit?.length) {
      server.log.warn('the audit routes are refused over plain http beyond loopback');
    }
    if (tlsFiles && tls) reloader = watchTls(server, tlsFiles, tls);
    ready = true;
    return await serveUntilSignal(server, { set: (v) => (ready = v) });
  } catch (err) {
    reportError(err, io);
    await server?.close().catch(() => undefined);
    return EXIT.error;
  } finally {
    reloader?.stop();
  }
}

async function build(
  config: GateConfig,
  opts: ServeOptions,
  io: CommandIO,
  s: { tokens: ServerOptions['tokens']; tls?: TlsPair; host: string; ready: () => boolean },
): Promise<{ server: FastifyInstance; gate: Gate }> {
  const gate = await createGate(config);
  const server = createServer({
    gate,
    config,
    tokens: s.tokens,
    logger: { level: 'info', stream: { write: (line: string) => io.stderr(line) } },
    ready: s.ready,
    ...(opts.envDefault ? { admissionEnvironment: opts.envDefault } : {}),
    admission: config.admission,
    allowDryRun: config.server.allowDryRun,
    load: config.server.load,
    ...(s.tls ? { tls: s.tls } : {}),
    exposed: !isLoopback(s.host),
  });
  return { server, gate };
}

function watchTls(server: FastifyInstance, files: TlsFiles, initial: TlsPair): TlsReloader {
  return reloadTlsOnChange(server, files, initial, {
    onError: (err) => server.log.warn({ code: err.code }, `tls reload skipped: ${err.message}`),
  });
}

/** Serves until SIGTERM or SIGINT, then drains; exit 2 when the drain had to cut connections. */
async function serveUntilSignal(server: FastifyInstance, ready: { set(v: boolean): void }) {
  // (pending break-glass announcements are retried by the gate itself until it is closed)
  const signal = await untilSignal(['SIGTERM', 'SIGINT']);
  // Not ready first, so a load balancer stops sending while the requests in flight finish.
  ready.set(false);
  server.log.info({ signal }, 'shutting down');
  const { forced } = await closeGracefully(server);
  return forced ? EXIT.error : EXIT.ok;
}

/** TLS needs both files; one alone is a mistake, not a request for plain http. */
function tlsFilesOf(opts: ServeOptions): TlsFiles | undefined {
  if (opts.tlsCert === undefined && opts.tlsKey === undefined) return undefined;
  if (opts.tlsCert === undefined || opts.tlsKey === undefined) {
    throw new GateError(
      'USAGE_ERROR',
      '--tls-cert and --tls-key go together: give both or neither',
    );
  }
  return { cert: opts.tlsCert, key: opts.tlsKey };
}

/** GATE_TOKEN_AUDIT, GATE_TOKEN_DECISIONS, GATE_TOKEN_BREAK_GLASS: comma-separated tokens. */
export function tokensFrom(env: Environment): NonNullable<ServerOptions['tokens']> & {
  decisions: string[];
} {
  const list = (name: string) =>
    (env[name] ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  return {
    audit: list('GATE_TOKEN_AUDIT'),
    decisions: list('GATE_TOKEN_DECISIONS'),
    breakGlass: list('GATE_TOKEN_BREAK_GLASS'),
  };
}

function parsePort(raw: string): number {
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new GateError(
      'USAGE_ERROR',
      `--port must be a number from 0 to 65535, got ${JSON.stringify(raw)}`,
    );
  }
  return port;
}

/** Resolves on the first signal; the handlers go with it, so a second one stops at once. */
function untilSignal(signals: NodeJS.Signals[]): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (s: NodeJS.Signals) => {
      for (const x of signals) process.off(x, handler);
      resolve(s);
    };
    for (const s of signals) process.on(s, handler);
  });
}
