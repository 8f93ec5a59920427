import { createPrivateKey } from 'node:crypto';
import type { GateConfig } from '../config.js';
import { GateError } from '../errors.js';
import type { CheckpointOptions } from './checkpointer.js';
import { createJsonlLedger } from './jsonl.js';
import type { AuditLedger, Ledger } from './ledger.js';
import { createPostgresLedger } from './postgres.js';
import { createSqliteLedger } from './sqlite.js';

/** The ledger the configuration names: SQLite by default, PostgreSQL for replicas, or JSON Lines. */
export async function openLedger(c: GateConfig['ledger']): Promise<Ledger> {
  if (c.backend === 'jsonl') return createJsonlLedger(c.path);
  return openAuditLedger(c);
}

/** A ledger an auditor can query and verify (not the plain JSON Lines file). */
export async function openAuditLedger(c: GateConfig['ledger']): Promise<AuditLedger> {
  const checkpoint = checkpointOptions(c);
  switch (c.backend) {
    case 'postgres':
      return createPostgresLedger({ url: c.url!, ...(checkpoint ? { checkpoint } : {}) });
    case 'sqlite':
      return createSqliteLedger({ path: c.path, ...(checkpoint ? { checkpoint } : {}) });
    default:
      throw new GateError(
        'CONFIG_INVALID',
        `the ${c.backend} ledger has no chain to query or verify: use sqlite or postgres`,
      );
  }
}

function checkpointOptions(c: GateConfig['ledger']): CheckpointOptions | undefined {
  if (!c.checkpointKeyPem) return undefined;
  let key;
  try {
    key = createPrivateKey(c.checkpointKeyPem);
  } catch (err) {
    throw new GateError('CONFIG_INVALID', 'ledger.checkpointKey is not a pem private key', {
      cause: err,
    });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new GateError('CONFIG_INVALID', 'ledger.checkpointKey must be an ed25519 key');
  return {
    key,
    ...(c.checkpointEvery?.records ? { everyRecords: c.checkpointEvery.records } : {}),
    ...(c.checkpointEvery?.seconds ? { everySeconds: c.checkpointEvery.seconds } : {}),
  };
}
