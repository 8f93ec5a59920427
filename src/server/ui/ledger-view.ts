import {
  createJsonlLedger,
  createReplayer,
  MAX_JSONL_LIMIT,
  policyStoreFor,
  readDecisions,
  recordedInput,
  verifyDefaults,
  type AuditLedger,
  type ChainVerification,
  type Checkpoint,
  type LedgerQuery,
  type Replay,
} from '../../api/audit.js';
import { keyIdOf } from '../../api/verify.js';
import type { GateConfig } from '../../config.js';
import type { Decision } from '../../decision.js';
import { GateError } from '../../errors.js';
import type { Gate } from '../../gate.js';

/** One decision as the web view shows it: the chain fields when the ledger has a chain. */
export interface ShownRecord {
  decision: Decision;
  input: unknown;
  seq?: number;
  hash?: string;
  prevHash?: string;
}

export interface LedgerHealth {
  backend: GateConfig['ledger']['backend'];
  verification: ChainVerification;
  /** records checked in order before the first that does not fit (all of them when ok) */
  verifiedUpTo: number;
  checkpoints: Checkpoint[];
  /**
   * the configured key's id in the form checkpoints carry it (the gate's one key id form:
   * base64 of the SHA-256 of its DER SPKI, src/verify/key-id.ts)
   */
  configuredKeyId?: string;
}

/** A break-glass request's acceptance, refusal or revocation, as the ledger's chain keeps it. */
export type BreakGlassRecord = Awaited<
  ReturnType<NonNullable<AuditLedger['breakGlassRecords']>>
>[number];

/** What the pages read, the same way /v1/audit reads it (src/server/audit.ts). */
export interface LedgerView {
  list(q: LedgerQuery): Promise<{ decisions: Decision[]; skipped: number }>;
  /** stored break-glass records, newest first (none in a ledger that stores no requests) */
  breakGlass(limit: number): Promise<BreakGlassRecord[]>;
  one(id: string): Promise<ShownRecord | undefined>;
  replay(r: ShownRecord): Promise<Replay>;
  health(): Promise<LedgerHealth>;
}

/**
 * The gate's own ledger (never a second connection to it): SQLite or PostgreSQL through the
 * AuditLedger; a JSON Lines ledger read from its file, which has no chain to show.
 */
export function createLedgerView(
  gate: Pick<Gate, 'ledger' | 'policy'>,
  config: GateConfig['ledger'],
): LedgerView {
  const jsonl = config.backend === 'jsonl' ? config.path : undefined;
  const audit = (): AuditLedger => {
    if (!gate.ledger)
      throw new GateError('LEDGER_UNAVAILABLE', 'the gate records to no ledger that can be read');
    return gate.ledger;
  };
  const replayer = createReplayer({ store: policyStoreFor(config), now: gate.policy });
  return {
    async list(q) {
      if (jsonl)
        return readDecisions(jsonl, { ...q, limit: Math.min(q.limit ?? 100, MAX_JSONL_LIMIT) });
      return { decisions: (await audit().query(q)).map((r) => r.decision), skipped: 0 };
    },
    async one(id) {
      // as /v1/audit: a JSON Lines file has no chain to prove the record is the one recorded
      if (jsonl)
        throw new GateError(
          'CONFIG_INVALID',
          'one decision and its replay need a sqlite or postgres ledger: this gate records to jsonl',
        );
      const r = await audit().get(id);
      if (!r) return undefined;
      return {
        decision: r.decision,
        input: recordedInput(r),
        seq: r.seq,
        hash: r.hash,
        prevHash: r.prevHash,
      };
    },
    async breakGlass(limit) {
      const ledger = jsonl ? undefined : audit();
      return ledger?.breakGlassRecords ? ledger.breakGlassRecords(limit) : [];
    },
    replay: (r) => replayer({ decision: r.decision, input: r.input }),
    async health() {
      const { publicKey, everyRecords } = verifyDefaults(config);
      const ledger = jsonl ? createJsonlLedger(jsonl) : audit();
      const verification = await ledger.verify(publicKey, everyRecords ? { everyRecords } : {});
      const checkpoints = jsonl ? [] : await audit().checkpoints();
      const broken = verification.firstBroken;
      return {
        backend: config.backend,
        verification,
        verifiedUpTo: broken ? Math.max(0, broken.seq - 1) : verification.records,
        checkpoints,
        ...(publicKey
          ? {
              configuredKeyId: keyIdOf(publicKey),
            }
          : {}),
      };
    },
  };
}
