import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AuditLedger,
  type LedgerQuery,
  openAuditLedger,
  openLedgerToVerify,
  policyStoreFor,
  recordedInput,
  type LedgerRecord,
  createReplayer,
  parseCheckpoints,
  verifyDefaults,
} from '../../api/audit.js';
import { loadCompiledPolicy } from '../../api/policy.js';
import { loadConfig, type GateConfig } from '../../config.js';
import type { Outcome } from '../../decision.js';
import { GateError } from '../../errors.js';
import { readBoundedFile } from '../../util/input.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import { replayText, table, verdict, view } from './audit-text.js';

export interface AuditOptions {
  config?: string;
  format?: 'table' | 'json' | 'jsonl';
}

/** Opens the configured ledger, runs `fn`, closes it; every failure is one coded line, exit 2. */
async function withOpened<L extends { close(): Promise<void> }>(
  opts: AuditOptions,
  io: CommandIO,
  open: (c: GateConfig['ledger']) => Promise<L>,
  fn: (l: L, c: GateConfig) => Promise<number>,
): Promise<number> {
  let ledger: L | undefined;
  try {
    const config = loadConfig(opts.config, { cwd: io.cwd, ...(io.env ? { env: io.env } : {}) });
    ledger = await open(config.ledger);
    return await fn(ledger, config);
  } catch (err) {
    reportError(err, io);
    return EXIT.error;
  } finally {
    await ledger?.close().catch(() => undefined);
  }
}

/** an auditor's command never writes: the ledger may be a copy on read-only media */
const withLedger = (
  opts: AuditOptions,
  io: CommandIO,
  fn: (l: AuditLedger, c: GateConfig) => Promise<number>,
) => withOpened(opts, io, (c) => openAuditLedger(c, { readOnly: true }), fn);

export interface QueryOptions extends AuditOptions {
  subject?: string;
  env?: string;
  outcome?: Outcome;
  from?: string;
  to?: string;
  requester?: string;
  rule?: string;
  limit?: string;
}

/** `gate audit query`: what was decided, where, on what evidence, newest first. */
export function auditQueryCommand(opts: QueryOptions, io: CommandIO): Promise<number> {
  return withLedger(opts, io, async (ledger) => {
    const q: LedgerQuery = {
      ...(opts.subject ? { subject: opts.subject } : {}),
      ...(opts.env ? { environment: opts.env } : {}),
      ...(opts.outcome ? { outcome: opts.outcome } : {}),
      ...(opts.from ? { from: isoTime(opts.from, '--from') } : {}),
      ...(opts.to ? { to: isoTime(opts.to, '--to') } : {}),
      ...(opts.requester ? { requester: opts.requester } : {}),
      ...(opts.rule ? { rule: opts.rule } : {}),
      limit: opts.limit ? positive(opts.limit) : 100,
    };
    const records = await ledger.query(q);
    if (opts.format === 'json') io.stdout(`${JSON.stringify(records.map(view), null, 2)}\n`);
    else if (opts.format === 'jsonl')
      io.stdout(records.map((r) => `${JSON.stringify(view(r))}\n`).join(''));
    else io.stdout(table(records));
    return EXIT.ok;
  });
}

/** `gate audit show ID`: one decision in full, with the input it was made on. */
export function auditShowCommand(id: string, opts: AuditOptions, io: CommandIO): Promise<number> {
  return withLedger(opts, io, async (ledger) => {
    const r = await found(ledger, id);
    io.stdout(
      `${JSON.stringify({ ...view(r), decision: r.decision, input: recordedInput(r) }, null, 2)}\n`,
    );
    return EXIT.ok;
  });
}

export interface VerifyCommandOptions extends AuditOptions {
  publicKey?: string;
  /** a file of signed checkpoints held outside the ledger (the checkpoint log, a copy of a line) */
  checkpoint?: string;
  expectSize?: string;
}

/**
 * `gate audit verify`: the chain, the indexes, the checkpoints and their cadence, and what an
 * auditor held outside the ledger; exit 1 on tampering, naming where.
 */
export function auditVerifyCommand(opts: VerifyCommandOptions, io: CommandIO): Promise<number> {
  return withOpened(opts, io, openLedgerToVerify, async (ledger, config) => {
    const { publicKey, everyRecords } = verifyDefaults(
      config.ledger,
      opts.publicKey
        ? readBoundedFile(path.resolve(io.cwd, opts.publicKey), 64 * 1024, 'public key')
        : undefined,
    );
    const external = opts.checkpoint
      ? heldCheckpoints(opts.checkpoint, io.cwd, publicKey !== undefined)
      : undefined;
    const expectSize = opts.expectSize ? positive(opts.expectSize, '--expect-size') : undefined;
    const result = await ledger.verify(publicKey, {
      ...(external ? { external } : {}),
      ...(expectSize ? { expectSize } : {}),
      ...(everyRecords ? { everyRecords } : {}),
    });
    if (opts.format === 'json') io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    else io.stdout(verdict(result, publicKey !== undefined, external));
    return result.ok ? EXIT.ok : EXIT.failed;
  });
}

function heldCheckpoints(file: string, cwd: string, keyed: boolean) {
  if (!keyed)
    throw new GateError(
      'USAGE_ERROR',
      '--checkpoint needs the ledger public key (--public-key, or ledger.publicKey in the config)',
    );
  const text = readBoundedFile(path.resolve(cwd, file), 64 * 1024 * 1024, 'checkpoint file');
  return parseCheckpoints(text.toString('utf8'), file);
}

/**
 * `gate audit replay ID`: evaluates the recorded input again with the policy the decision was
 * made with (from the policy store beside the ledger) and, given --policy, with that one too;
 * reports the same result or the difference (replay.ts). Exit 0 same, 1 different.
 */
export function auditReplayCommand(
  id: string,
  opts: AuditOptions & { policy?: string },
  io: CommandIO,
): Promise<number> {
  return withLedger(opts, io, async (ledger, config) => {
    const r = await found(ledger, id);
    const now = opts.policy
      ? await loadCompiledPolicy(path.resolve(io.cwd, opts.policy))
      : undefined;
    const replay = createReplayer({
      store: policyStoreFor(config.ledger),
      ...(now ? { now } : {}),
    });
    const result = await replay({ decision: r.decision, input: recordedInput(r) }).catch(
      (err: unknown) => {
        throw hinted(err);
      },
    );
    io.stdout(opts.format === 'json' ? `${JSON.stringify(result, null, 2)}\n` : replayText(result));
    return result.same ? EXIT.ok : EXIT.failed;
  });
}

/** A recorded policy missing from the store can still be compared with one the auditor has. */
function hinted(err: unknown): unknown {
  if (
    err instanceof GateError &&
    err.code === 'POLICY_LOAD_FAILED' &&
    /is not in /.test(err.message)
  )
    return new GateError(err.code, `${err.message}: pass --policy`, { cause: err });
  return err;
}

/** `gate audit export`: every record as JSON Lines, in chain order, verifiable elsewhere. */
export function auditExportCommand(
  opts: AuditOptions & { out?: string },
  io: CommandIO,
): Promise<number> {
  return withLedger(opts, io, async (ledger) => {
    const lines: string[] = [];
    for await (const r of ledger.entries()) lines.push(`${JSON.stringify(r)}\n`);
    for (const c of await ledger.checkpoints())
      lines.push(`${JSON.stringify({ checkpoint: c })}\n`);
    if (opts.out) writeFileSync(path.resolve(io.cwd, opts.out), lines.join(''));
    else io.stdout(lines.join(''));
    return EXIT.ok;
  });
}

async function found(ledger: AuditLedger, id: string): Promise<LedgerRecord> {
  const r = await ledger.get(id);
  if (!r) throw new GateError('USAGE_ERROR', `no decision ${id} in the ledger`);
  return r;
}

function isoTime(s: string, flag: string): string {
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new GateError('USAGE_ERROR', `${flag} takes an rfc 3339 time, got ${JSON.stringify(s)}`);
  return new Date(t).toISOString();
}

function positive(s: string, flag = '--limit', max = flag === '--limit' ? 100_000 : 2 ** 53 - 1) {
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < 1 || n > max)
    throw new GateError('USAGE_ERROR', `${flag} takes a whole number from 1 to ${max}`);
  return n;
}
