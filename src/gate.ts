import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditLedger, Ledger } from './audit/ledger.js';
import { openLedger } from './audit/open.js';
import { savePolicy } from './audit/policy-store.js';
import { checkBreakGlass, type BreakGlassContext } from './breakglass/check.js';
import type { AcceptedBreakGlass, BreakGlassRefusal, BreakGlassRule } from './breakglass/types.js';
import type { Source } from './collect/types.js';
import { mergeData, type GateConfig } from './config.js';
import { decide } from './decide.js';
import type { Decision } from './decision.js';
import { GateError, toGateError } from './errors.js';
import { readWasmBundle } from './evaluate/bundle.js';
import { checkPolicyInput, type PolicyInput, type PolicySubject } from './evaluate/input.js';
import { DEFAULT_POLICY_PATH, loadCompiledPolicy, type CompiledPolicy } from './evaluate/policy.js';
import { collectAll, rejectedReport, verifyAll, type Deadline } from './evidence.js';
import { MAX_CONTEXT_DEPTH, sha256Hex, valueDepthExceeds } from './util/input.js';
import { breakGlassMessage } from './notify/message.js';
import { createOutbox, type Outbox } from './notify/outbox.js';
import { compileIdentityRules } from './verify/identity.js';
import { loadTrustedRoot, type Trust } from './verify/trust.js';
import type { ArtifactDigest } from './subject.js';
import { VERSION } from './util/version.js';

export interface CheckRequest {
  subjects: Array<{ digest: ArtifactDigest; name?: string; version?: string }>;
  environment: string;
  context?: Record<string, unknown>;
  /** extra bundle files or folders for this request only */
  bundles?: string[];
  /** signed break-glass requests (bundles), with where each came from */
  breakGlass?: Array<{ source: string; bytes: Buffer }>;
  dryRun?: boolean;
  /** the time budget of this decision in ms; the configured deadline when longer or absent */
  deadlineMs?: number;
  /** decide as of this time instead of now (recorded as such, as `asOf`) */
  at?: Date;
}

export interface Gate {
  check(req: CheckRequest): Promise<Decision>;
  close(): Promise<void>;
  readonly policy: CompiledPolicy;
  readonly trust: Trust;
  /** pending break-glass announcements, when webhooks are configured */
  readonly outbox: Outbox | undefined;
  /** the data the policy runs with (the library's defaults merged with the user's config) */
  readonly policyData: unknown;
  /** the ledger the gate records to, for queries (undefined for a JSON Lines ledger) */
  readonly ledger: AuditLedger | undefined;
}

/** Everything that touches disk, network and clock, injectable for tests. */
export interface GateDeps {
  now?: () => Date;
  newId?: () => string;
  ledger?: Ledger;
  trust?: Trust;
  policy?: CompiledPolicy;
  /** the evidence sources for a request (default: from the configuration) */
  sources?: (req: CheckRequest) => Source[];
  /** where break-glass announcements wait for delivery (default: from the configuration) */
  outbox?: Outbox;
}

/**
 * The one wiring point: collect -> verify -> evaluate -> decide -> audit. The CLI and the server
 * are thin adapters over it. Loads trust material and the compiled policy once.
 */
export async function createGate(config: GateConfig, deps: GateDeps = {}): Promise<Gate> {
  const trust = deps.trust ?? loadTrustedRoot(config.trustedRoot);
  const { policy, data } = deps.policy
    ? { policy: deps.policy, data: undefined }
    : await loadPolicy(config);
  const breakGlassRules = breakGlassRulesOf(
    data ?? mergeData({}, { gate: { config: config.policy.config } }),
  );
  const lock = createLock();
  const outbox = deps.outbox ?? outboxFor(config);
  // each signed ledger checkpoint is also announced through the outbox (truncation evidence)
  const opened = deps.ledger ?? (await openLedger(config.ledger, outbox ? { outbox } : {}));
  // Replay needs the exact policy each decision was made with: it is stored beside the ledger
  // before the first record that names it, as part of making that record durable.
  const policies = path.join(path.dirname(config.ledger.path), 'policies');
  let policyStored = false;
  const ledger: Ledger = {
    ...opened,
    append: async (decision, input) => {
      if (!policyStored) savePolicy(policies, policy);
      policyStored = true;
      await opened.append(decision, input);
    },
    consumed: (id) => opened.consumed(id),
    close: () => opened.close(),
  };
  const now = deps.now ?? (() => new Date());
  const newId = deps.newId ?? randomUUID;
  const identities = config.identities?.length
    ? compileIdentityRules(config.identities)
    : ('any' as const);
  const sourcesFor = deps.sources ?? (() => []);

  async function check(asked: CheckRequest): Promise<Decision> {
    if (valueDepthExceeds(asked.context ?? {}, MAX_CONTEXT_DEPTH)) {
      throw new GateError('INPUT_TOO_DEEP', `context nests more than ${MAX_CONTEXT_DEPTH} levels`);
    }
    const req = withUniqueSubjects(asked);
    const decidedAt = now();
    // `at` decides as of another time (an auditor's question); the record says so.
    const time = req.at ?? decidedAt;
    const deadline = deadlineOf(config.deadlineMs, req.deadlineMs);
    const collected = await collectAll(sourcesFor(req), req, deadline);
    const verified = verifyAll(collected.evidence, req, { trust, identities, keys: config.keys });
    const bg = checkRequests(req, { trust, keys: config.keys, now: time, rules: breakGlassRules });
    const input: PolicyInput = {
      subjects: req.subjects.map(toSubject),
      environment: req.environment,
      effectiveTime: time.toISOString(),
      attestations: verified.attestations,
      rejected: [...collected.rejected, ...verified.rejected],
      context: req.context ?? {},
      breakGlass: bg.accepted ? [bg.accepted] : [],
    };
    const result = evaluate(policy, input);
    const mode = req.dryRun ? 'dry-run' : config.mode;
    const base = {
      id: newId(),
      time: decidedAt.toISOString(),
      ...(req.at ? { asOf: input.effectiveTime } : {}),
      gateVersion: VERSION,
      environment: req.environment,
      subjects: input.subjects,
      mode,
      evidence: [...collected.rejected.map(rejectedReport), ...verified.reports],
      sourceFailures: collected.failures,
      digests: {
        policy: policy.digest,
        trustRoot: trust.digest,
        config: config.digest,
        input: sha256Hex(JSON.stringify(input)),
      },
      ...contextMark(req.context),
    };
    const verdict = (override: AcceptedBreakGlass | undefined, refused: BreakGlassRefusal[]) => ({
      ...base,
      ...decide({ policy: result, failures: collected.failures, mode, override }),
      ...(refused.length ? { breakGlassRefused: refused } : {}),
    });
    // Checking single use and recording the override happen under one lock, so one request
    // cannot override twice even when two decisions race.
    const release = bg.accepted ? await lock() : () => {};
    try {
      const { accepted: override, refused } = await unused(ledger, bg);
      let recorded = await record(ledger, announce(outbox, verdict(override, refused)), input);
      if (override && recorded.error?.code === 'BREAK_GLASS_REPLAYED') {
        // Another process (a second CLI on the same file, another replica) recorded an override
        // with this request first: this decision is made again without it.
        const replay = replayed(
          override.requestId,
          'used by an override another process recorded first',
        );
        recorded = await record(ledger, verdict(undefined, [...refused, replay]), input);
      }
      if (recorded.outcome === 'override') void outbox?.deliver().catch(() => undefined);
      return recorded;
    } finally {
      release();
    }
  }

  const auditable = 'query' in opened ? (opened as AuditLedger) : undefined;
  return {
    check,
    close: () => ledger.close(),
    policy,
    trust,
    outbox,
    policyData: data,
    ledger: auditable,
  };
}

async function loadPolicy(config: GateConfig): Promise<{ policy: CompiledPolicy; data: unknown }> {
  const source = config.policy.path ?? DEFAULT_POLICY_PATH;
  // The user's policy config is merged over the library's defaults (data.json in the bundle).
  const defaults = config.policy.path
    ? undefined
    : readWasmBundle(readFileSync(DEFAULT_POLICY_PATH)).data;
  const data = Object.keys(config.policy.config).length
    ? mergeData(defaults ?? {}, { gate: { config: config.policy.config } })
    : defaults;
  return { policy: await loadCompiledPolicy(source, data), data };
}

type BreakGlassResult = ReturnType<typeof checkBreakGlass>;

function checkRequests(
  req: CheckRequest,
  ctx: Pick<BreakGlassContext, 'trust' | 'keys' | 'now' | 'rules'>,
): BreakGlassResult {
  if (!req.breakGlass?.length) return { accepted: undefined, refused: [] };
  const subjects = req.subjects.map((s) => s.digest);
  return checkBreakGlass(req.breakGlass, { ...ctx, subjects, environment: req.environment });
}

/** A request already used by a recorded override is refused: break-glass is single-use. */
async function unused(ledger: Ledger, bg: BreakGlassResult): Promise<BreakGlassResult> {
  if (!bg.accepted || !(await ledger.consumed(bg.accepted.requestId))) return bg;
  const replay = replayed(bg.accepted.requestId, 'was already used');
  return { accepted: undefined, refused: [...bg.refused, replay] };
}

function replayed(requestId: string, why: string): BreakGlassRefusal {
  return {
    requestId,
    source: 'ledger',
    code: 'BREAK_GLASS_REPLAYED',
    message: `request ${requestId} ${why}`,
  };
}

/**
 * The decision's one deadline: the configured one, or the caller's when shorter (admission
 * passes what is left of the webhook's timeout).
 */
function deadlineOf(configured: number, asked: number | undefined): Deadline {
  const ms = Math.max(1, Math.min(configured, asked ?? Infinity));
  return { signal: AbortSignal.timeout(ms), ms };
}

/** A subject named twice is decided on once (and recorded once). */
function withUniqueSubjects(req: CheckRequest): CheckRequest {
  const seen = new Set<string>();
  const subjects = req.subjects.filter((s) => {
    const key = `${s.digest.algorithm}:${s.digest.hex.toLowerCase()}`;
    return !seen.has(key) && seen.add(key);
  });
  return subjects.length === req.subjects.length ? req : { ...req, subjects };
}

/**
 * The caller's context is not signed by anyone: policies may read it as information, never as
 * a reason to relax a rule, and the decision says which keys it held and that none is verified.
 */
function contextMark(context: Record<string, unknown> | undefined) {
  const keys = Object.keys(context ?? {});
  return keys.length ? { context: { verified: false as const, keys: keys.sort() } } : {};
}

function breakGlassRulesOf(data: unknown): Record<string, BreakGlassRule> | undefined {
  const envs = (
    data as { gate?: { config?: { break_glass?: { environments?: unknown } } } } | undefined
  )?.gate?.config?.break_glass?.environments;
  return envs && typeof envs === 'object' ? (envs as Record<string, BreakGlassRule>) : undefined;
}

/** A one-slot async mutex. */
function createLock(): () => Promise<() => void> {
  let tail = Promise.resolve();
  return () => {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const ready = tail.then(() => release);
    tail = tail.then(() => next);
    return ready;
  };
}

function evaluate(policy: CompiledPolicy, input: PolicyInput) {
  try {
    checkPolicyInput(input);
    return policy.evaluate(input);
  } catch (err) {
    return toGateError(err, 'POLICY_EVAL_FAILED');
  }
}

function outboxFor(config: GateConfig): Outbox | undefined {
  if (config.notify.webhooks.length === 0) return undefined;
  return createOutbox({ file: config.notify.outbox, webhooks: config.notify.webhooks });
}

/**
 * Every override is announced: the announcement is durable in the outbox before the override is
 * recorded and answered. If it cannot be written, the gate does not override.
 */
function announce(outbox: Outbox | undefined, decision: Decision): Decision {
  if (decision.outcome !== 'override' || !outbox) return decision;
  try {
    outbox.enqueue(breakGlassMessage(decision));
    return decision;
  } catch (err) {
    const e = toGateError(err, 'NOTIFY_UNAVAILABLE');
    return {
      ...decision,
      outcome: 'error',
      allow: false,
      error: { code: 'NOTIFY_UNAVAILABLE', message: e.message },
    };
  }
}

/** A decision is returned only once its record is durable; if it cannot be, the gate cannot decide. */
async function record(ledger: Ledger, decision: Decision, input: PolicyInput): Promise<Decision> {
  try {
    await ledger.append(decision, input);
    return decision;
  } catch (err) {
    const e = toGateError(err, 'LEDGER_UNAVAILABLE');
    return {
      ...decision,
      outcome: 'error',
      allow: false,
      error: { code: e.code, message: e.message },
    };
  }
}

function toSubject(s: CheckRequest['subjects'][number]): PolicySubject {
  return {
    digest: { [s.digest.algorithm]: s.digest.hex },
    ...(s.name ? { name: s.name } : {}),
    ...(s.version ? { version: s.version } : {}),
  };
}
