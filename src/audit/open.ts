import { createPrivateKey } from 'node:crypto';
import type { GateConfig } from '../config.js';
import { GateError } from '../errors.js';
import type { CheckpointOptions } from './checkpointer.js';
import { checkpointMessage } from '../notify/message.js';
import type { Outbox } from '../notify/outbox.js';
import { createPublisher, type CheckpointHook } from './publish.js';
import { createJsonlLedger, type JsonlLedger } from './jsonl.js';
import type { AuditLedger, Ledger } from './ledger.js';
import { createSqliteLedger } from './sqlite.js';

export interface OpenLedgerOptions {
  /** each signed checkpoint, once committed, besides ledger.checkpointLog and the outbox */
  onCheckpoint?: CheckpointHook;
  /** the webhook outbox: each signed checkpoint is announced there (checkpointMessage) */
  outbox?: Pick<Outbox, 'enqueue' | 'deliver'>;
  /** only read it (gate audit): nothing is created or written; a copy on read-only media opens */
  readOnly?: boolean;
}

/** The ledger the configuration names: SQLite by default, PostgreSQL for replicas, or JSON Lines. */
export async function openLedger(
  c: GateConfig['ledger'],
  opts: OpenLedgerOptions = {},
): Promise<Ledger> {
  if (c.backend === 'jsonl') return createJsonlLedger(c.path);
  return openAuditLedger(c, opts);
}

/** Any configured ledger, opened read-only to be verified (gate audit verify). */
export async function openLedgerToVerify(
  c: GateConfig['ledger'],
): Promise<AuditLedger | JsonlLedger> {
  if (c.backend === 'jsonl') return createJsonlLedger(c.path);
  return openAuditLedger(c, { readOnly: true });
}

/** A ledger an auditor can query and verify (not the plain JSON Lines file). */
export async function openAuditLedger(
  c: GateConfig['ledger'],
  opts: OpenLedgerOptions = {},
): Promise<AuditLedger> {
  const checkpoint = opts.readOnly ? undefined : checkpointOptions(c);
  const publish = checkpoint
    ? createPublisher({ log: c.checkpointLog, onCheckpoint: hookOf(opts) })
    : undefined;
  const common = {
    ...(checkpoint ? { checkpoint } : {}),
    ...(publish ? { publish } : {}),
    ...(opts.readOnly ? { readOnly: true } : {}),
  };
  switch (c.backend) {
    case 'postgres': {
      // pg is loaded only for a PostgreSQL ledger (the CLI's start: issue 11)
      const { createPostgresLedger } = await import('./postgres.js');
      return createPostgresLedger({ url: c.url!, ...common });
    }
    case 'sqlite':
      return createSqliteLedger({ path: c.path, ...common });
    default:
      throw new GateError(
        'CONFIG_INVALID',
        `the ${c.backend} ledger has no chain to query or verify: use sqlite or postgres`,
      );
  }
}

function hookOf({ onCheckpoint, outbox }: OpenLedgerOptions): CheckpointHook | undefined {
  if (!outbox) return onCheckpoint;
  return (checkpoint) => {
    // durable in the outbox first (a failure is retried by the publisher), then sent
    outbox.enqueue(checkpointMessage(checkpoint));
    onCheckpoint?.(checkpoint);
    void outbox.deliver().catch(() => undefined);
  };
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
