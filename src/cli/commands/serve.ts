import type { FastifyInstance } from 'fastify';
import { defaultSources } from '../../collect/sources.js';
import { loadConfig } from '../../config.js';
import { GateError } from '../../errors.js';
import { createGate } from '../../gate.js';
import { createServer, type ServerOptions } from '../../server/app.js';
import { closeGracefully } from '../../server/shutdown.js';
import { EXIT, type CommandIO } from '../io.js';
import { reportError } from './verify-bundle.js';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  envDefault?: string;
}

/**
 * `gate serve`: the HTTP server until SIGTERM or SIGINT, then a graceful shutdown. Logs (JSON
 * lines) go to stderr. Tokens come from the environment, never from flags, which other users
 * of the machine can read in the process list.
 */
export async function serveCommand(
  opts: ServeOptions,
  io: CommandIO,
  env = process.env,
): Promise<number> {
  let server: FastifyInstance | undefined;
  try {
    const config = loadConfig(opts.config, io.cwd);
    const port = parsePort(opts.port ?? '8080');
    const gate = await createGate(config, {
      sources: (r) => defaultSources(config, r.bundles ?? []),
    });
    let ready = false;
    server = createServer({
      gate,
      config,
      tokens: tokensFrom(env),
      logger: { level: 'info', stream: { write: (line: string) => io.stderr(line) } },
      ready: () => ready,
      ...(opts.envDefault ? { admissionEnvironment: opts.envDefault } : {}),
    });
    await server.listen({ host: opts.host ?? '127.0.0.1', port });
    ready = true;
    // Break-glass announcements still pending (a webhook was down) are retried in the background.
    const outbox = gate.outbox;
    const retry = outbox
      ? setInterval(() => void outbox.deliver().catch(() => undefined), 30_000)
      : undefined;
    retry?.unref();
    const signal = await untilSignal(['SIGTERM', 'SIGINT']);
    clearInterval(retry);
    // Not ready first, so a load balancer stops sending while the requests in flight finish.
    ready = false;
    server.log.info({ signal }, 'shutting down');
    const { forced } = await closeGracefully(server);
    return forced ? EXIT.error : EXIT.ok;
  } catch (err) {
    reportError(err, io);
    await server?.close().catch(() => undefined);
    return EXIT.error;
  }
}

/** GATE_TOKEN_BREAK_GLASS, GATE_TOKEN_AUDIT, GATE_TOKEN_DECISIONS: comma-separated tokens. */
export function tokensFrom(env: NodeJS.ProcessEnv): NonNullable<ServerOptions['tokens']> {
  const list = (name: string) =>
    (env[name] ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  return {
    breakGlass: list('GATE_TOKEN_BREAK_GLASS'),
    audit: list('GATE_TOKEN_AUDIT'),
    decisions: list('GATE_TOKEN_DECISIONS'),
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
