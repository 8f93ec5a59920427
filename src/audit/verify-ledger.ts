import { createPublicKey, type KeyObject } from 'node:crypto';
import type { GateConfig } from '../config.js';
import { GateError } from '../errors.js';
import type { LedgerEntry } from './break-glass-record.js';
import { createIndexAudit } from './index-audit.js';
import type { AuditLedger, LedgerVerifyOptions } from './ledger.js';
import type { Checkpoint } from './record.js';
import { verifyChain, type ChainVerification } from './verify-chain.js';

/** What a verification reads through a ledger's public methods. */
export type ChainSource = Pick<AuditLedger, 'head' | 'checkpoints' | 'entries' | 'indexTables'>;

/**
 * verifyChain over the records as the ledger returns them, with every index cross-checked: the
 * way of a backend that keeps no bytes to check faster (PostgreSQL; SQLite has sqlite-verify.ts).
 */
export async function verifyRecords(
  ledger: ChainSource,
  publicKey: KeyObject | undefined,
  opts: LedgerVerifyOptions = {},
): Promise<ChainVerification> {
  // Replicas go on appending: verify the first `size` records, with the checkpoints of those;
  // a checkpoint beyond the head as it is now still means records were removed.
  const size = (await ledger.head()).size;
  let checkpoints = await ledger.checkpoints();
  if (checkpoints.some((c) => c.size > size)) {
    const now = (await ledger.head()).size;
    checkpoints = checkpoints.filter((c) => c.size <= size || c.size > now);
  }
  return verifyChain(first(ledger.entries(), size), checkpoints, publicKey, {
    ...opts,
    indexes: createIndexAudit(ledger.indexTables()),
  });
}

async function* first(records: AsyncIterable<LedgerEntry>, n: number) {
  if (n === 0) return;
  let seen = 0;
  for await (const r of records) {
    yield r;
    if (++seen >= n) return;
  }
}

/**
 * The key and cadence a verification uses by default: the ledger's public key (or the public half
 * of its checkpoint key), `pem` when the auditor brings one; with a key the ledger is
 * checkpointed, at the configured cadence or the default one.
 */
export function verifyDefaults(
  c: GateConfig['ledger'],
  pem?: string | Buffer,
): { publicKey?: KeyObject; everyRecords?: number } {
  const text = pem ?? c.publicKeyPem ?? c.checkpointKeyPem;
  if (text === undefined) return {};
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(text);
  } catch (err) {
    throw new GateError('CONFIG_INVALID', 'the ledger public key is not a pem key', { cause: err });
  }
  return { publicKey, everyRecords: c.checkpointEvery?.records ?? 100 };
}

/**
 * The checkpoints in a file as published: the checkpoint log (JSON Lines), one checkpoint, a line
 * of `gate audit export` or a webhook message (`{checkpoint: ...}`). A last line cut short (a
 * crash while the log was appended to) is left out; anything else that is not a checkpoint is an
 * error, never ignored.
 */
export function parseCheckpoints(text: string, name: string): Checkpoint[] {
  let docs: unknown[];
  try {
    docs = [JSON.parse(text)];
  } catch {
    const lines = text.split('\n');
    const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
    docs = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        docs.push(JSON.parse(line));
      } catch (err) {
        if (i === torn) return;
        throw new GateError('INPUT_MALFORMED_JSON', `line ${i + 1} of ${name} is not json`, {
          cause: err,
        });
      }
    });
  }
  const checkpoints = docs.map((d, i) => checkpointOf(d, `${name} (entry ${i + 1})`));
  if (checkpoints.length === 0)
    throw new GateError('INPUT_MALFORMED_JSON', `${name} holds no checkpoint`);
  return checkpoints;
}

function checkpointOf(doc: unknown, where: string): Checkpoint {
  const inner = (doc as { checkpoint?: unknown } | null)?.checkpoint ?? doc;
  const c = inner as Partial<Checkpoint> | null;
  const ok =
    c !== null &&
    typeof c === 'object' &&
    Number.isSafeInteger(c.size) &&
    (c.size ?? 0) > 0 &&
    typeof c.headHash === 'string' &&
    /^[0-9a-f]{64}$/.test(c.headHash) &&
    typeof c.time === 'string' &&
    typeof c.keyId === 'string' &&
    typeof c.signature === 'string';
  if (!ok)
    throw new GateError(
      'INPUT_MALFORMED_JSON',
      `${where} is not a signed checkpoint {size, headHash, time, keyId, signature}`,
    );
  return {
    size: c.size!,
    headHash: c.headHash!,
    time: c.time!,
    keyId: c.keyId!,
    signature: c.signature!,
  };
}
