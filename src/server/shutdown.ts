import type { FastifyInstance } from 'fastify';

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Node's server.close() drops only the connections idle at that moment: a keep-alive connection
 * whose request is still running would stay open after its response and hold close() until the
 * deadline. Once closing, every response asks the client to hang up, so it closes as it finishes.
 */
export function installDraining(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
}

/**
 * Stops accepting connections and waits for the requests in flight: a decision is recorded in
 * the ledger before its response is sent, so a finished request is a durable decision. The
 * server's onClose hook then closes the gate (app.ts). Past the deadline the remaining
 * connections are cut so a stuck source cannot hold the process forever; those clients get no
 * answer, which every caller of a gate must already treat as "not allowed".
 */
export async function closeGracefully(
  server: FastifyInstance,
  timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
): Promise<{ forced: boolean }> {
  let forced = false;
  const timer = setTimeout(() => {
    forced = true;
    server.log.warn({ timeoutMs }, 'shutdown deadline passed: closing the remaining connections');
    server.server.closeAllConnections();
  }, timeoutMs);
  try {
    await server.close();
  } finally {
    clearTimeout(timer);
  }
  return { forced };
}
