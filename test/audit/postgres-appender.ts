/**
 * One gate replica for the concurrency test: its own ledger (its own pool) on the shared
 * database. Says "ready" once connected, waits for "go" on stdin, appends COUNT decisions (a few
 * at a time, like a busy server), prints "done" and exits.
 *
 *   node --import tsx test/audit/postgres-appender.ts URL NAME COUNT
 */
import { createInterface } from 'node:readline';
import { createPostgresLedger } from '../../src/audit/postgres.js';
import { decisionFor, inputFor } from './postgres-helpers.js';

const [url, replica, countText] = process.argv.slice(2);
if (!url || !replica || !countText) throw new Error('usage: postgres-appender.ts URL NAME COUNT');
const name: string = replica;
const count = Number(countText);
const inFlight = 4;

const ledger = await createPostgresLedger({ url, pool: inFlight });
const lines = createInterface({ input: process.stdin });
console.log('ready');
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

let next = 0;
async function worker() {
  while (next < count) {
    const id = `${name}-${String(next++).padStart(4, '0')}`;
    await ledger.append(decisionFor(id, { subjects: [name] }), inputFor(id));
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
await ledger.close();
console.log('done');
