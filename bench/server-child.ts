/**
 * The server side of `make bench`'s HTTP load (bench/run.ts drives it from another process):
 * `gate` mode serves the real gate (evidence from a folder, verification cache, the policy, the
 * durable SQLite ledger); `ceiling` mode serves the same framework answering a constant response
 * of the given size, the most any route could do. Prints the port on stdout, then serves until
 * stdin closes.
 *
 *   npx tsx bench/server-child.ts gate DIR     (DIR holds gate.yaml)
 *   npx tsx bench/server-child.ts ceiling BYTES
 */
import Fastify from 'fastify';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { createGate } from '../src/gate.js';
import { createServer } from '../src/server/app.js';

async function main(): Promise<void> {
  const [mode, arg] = process.argv.slice(2);
  let app;
  if (mode === 'gate') {
    const config = loadConfig(path.join(arg!, 'gate.yaml'), { cwd: arg!, env: {} });
    const gate = await createGate(config);
    app = createServer({ gate, config, tokens: {} });
  } else {
    const body = JSON.stringify({ pad: 'x'.repeat(Math.max(0, Number(arg) - 10)) });
    app = Fastify({ logger: false });
    app.post('/v1/decisions', async (_req, reply) => reply.type('application/json').send(body));
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void app.close().then(() => process.exit(0)));
}

void main();
