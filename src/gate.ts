import { randomUUID } from 'node:crypto';
import type { AuditLedger, Ledger } from './audit/ledger.js';
import { openLedger } from './audit/open.js';
import { policyStoreFor, type PolicyStore } from './audit/policy-store.js';
import {
  lookupRequest,
  lostRace,
  notRevoked,
  registerRequest,
  revokeRequest,
  useStored,
  type Registered,
} from './breakglass/stored.js';
import type { BreakGlassRefusal } from './breakglass/types.js';
import {
  breakGlassRulesOf,
  checkPresented,
  replayRefusal,
  singleUse,
  type BreakGlassResult,
} from './breakglass/use.js';
import { collectAll, type Deadline } from './collect/all.js';
import type { createImageResolver } from './collect/oci-image.js';
import { createSourcePlan, sharedClient } from './collect/sources.js';
import type { CollectResult, Source } from './collect/types.js';
import { mergeData, type GateConfig } from './config.js';
import { couldNotStand, decide } from './decide.js';
import { assemble, evidenceReports, type Decision, type DecisionFacts } from './decision.js';
import { GateError, toGateError } from './errors.js';
import { policyInputOf, type PolicyInput } from './evaluate/input.js';
import type { CompiledPolicy } from './evaluate/policy.js';
import { evaluateInput, loadConfiguredPolicy } from './evaluate/run.js';
import { breakGlassMessage } from './notify/message.js';
import { createOutbox, type Outbox } from './notify/outbox.js';
import { sinkOutboxPath } from './notify/sink-config.js';
import { createSinkOutbox, type SinkOutbox, type SinkOutboxOptions } from './notify/sink-outbox.js';
import {
  admitRequest,
  contextMark,
  deadlineOf,
  policySubject,
  type CheckRequest,
} from './request.js';
import { sha256Hex } from './util/input.js';
import { settledJson, jsonText } from './util/json-text.js';
import { createLock } from './util/lock.js';
import { VERSION } from './util/version.js';
import type { EvidenceOutcome } from './verify/evidence.js';
import { verifyEvidence } from './verify/evidence.js';
import { createVerifyCache, type VerifyCache, type VerifyCacheStats } from './verify/cache.js';
import { compileIdentityRules } from './verify/identity.js';
import { loadTrustedRoot, type Trust } from './verify/trust.js';
import { summarize, type SignedSummary } from './vsa.js';

export type { CheckRequest } from './request.js';

/** A request `gate recheck` makes: recorded linked to the decision it decides again. */
export type RecheckRequest = CheckRequest & { recheckOf?: Decision['recheckOf'] };

export interface Gate {
  check(req: RecheckRequest): Promise<Decision>;
  /** a signed verification summary of an enforced allow (needs vsa.key in the configuration) */
  summarize(decision: Decision): SignedSummary;
  /** stops the announcement retries and closes the ledger */
  close(): Promise<void>;
  readonly policy: CompiledPolicy;
  readonly trust: Trust;
  /** pending break-glass announcements, when webhooks are configured */
  readonly outbox: Outbox | undefined;
  /** the data the policy runs with (the library's defaults merged with the user's config) */
  readonly policyData: unknown;
  /** the ledger the gate records to, for queries (undefined for a JSON Lines ledger) */
  readonly ledger: AuditLedger | undefined;
  /** hits, misses, entries and the oldest entry's age of the verification cache */
  verifyCacheStats(): VerifyCacheStats;
  /** break-glass requests stored in the ledger (src/breakglass/stored.ts) */
  readonly breakGlass?: {
    /** checks a signed request and its co-signatures and records it, accepted or refused */
    register(bundles: unknown[]): Promise<Registered>;
    /** a request as the ledger holds it: accepted (with its bundles) and revoked, if either */
    lookup(requestId: string): ReturnType<typeof lookupRequest>;
    /** ends a stored request early, recorded */
    revoke(
      requestId: string,
      via: 'cli' | 'server',
      reason?: string,
    ): ReturnType<typeof revokeRequest>;
  };
  /** the decision stream to the configured sinks, when there are any */
  readonly sinks?: SinkOutbox;
}

/** Everything that touches disk, network and clock, injectable for tests. */
export interface GateDeps {
  now?: () => Date;
  newId?: () => string;
  ledger?: Ledger;
  trust?: Trust;
  policy?: CompiledPolicy;
  /** the evidence sources for a request (default: the configured ones, plus its `bundles`) */
  sources?: (req: CheckRequest) => Source[] | Promise<Source[]>;
  /** where break-glass announcements wait for delivery (default: from the configuration) */
  outbox?: Outbox;
  /** how often announcements not yet taken are tried again (default 30 s) */
  outboxRetryMs?: number;
  /** remembered verification results (default: one per gate, from the configuration) */
  verifyCache?: VerifyCache;
  /** the decision stream's timings (default: sink-outbox.ts) */
  sinkOutbox?: Partial<Omit<SinkOutboxOptions, 'file' | 'sinks'>>;
}

/** How long past its deadline a decision's record may still wait for the ledger. */
const RECORD_GRACE_MS = 1000;

/** How often announcements a webhook did not take yet are tried again. */
const OUTBOX_RETRY_MS = 30_000;

/**
 * The one wiring point: the configured sources, trust, policy, ledger and outbox, loaded once;
 * then each decision runs collect -> verify -> break glass -> input -> evaluate -> decide ->
 * assemble -> announce -> record. The CLI and the server are thin adapters over it.
 */
export async function createGate(config: GateConfig, deps: GateDeps = {}): Promise<Gate> {
  // The policy loads while the trust root does: opa builds a Rego folder in a process of its own,
  // and WebAssembly compiles off this thread (issue 11: the CLI's cold start). A trust root that
  // fails first still fails first; the policy's failure is then not reported as unhandled.
  const loading = deps.policy
    ? Promise.resolve({ policy: deps.policy, data: undefined })
    : loadConfiguredPolicy(config.policy);
  loading.catch(() => {});
  const trust = deps.trust ?? loadTrustedRoot(config.trustedRoot);
  const { policy, data } = await loading;
  const outbox = deps.outbox ?? outboxFor(config.notify);
  // each signed ledger checkpoint is also announced through the outbox (truncation evidence)
  const opened = deps.ledger ?? (await openLedger(config.ledger, outbox ? { outbox } : {}));
  const ledger = storingPolicy(opened, policyStoreFor(config.ledger), policy);
  const sinks = sinkOutboxFor(config, deps.sinkOutbox);
  // decisions recorded by a gate that stopped before its outbox write are read from the ledger
  const recovering =
    sinks && 'query' in opened
      ? sinks.recover(opened as AuditLedger).catch(() => 0)
      : Promise.resolve(0);
  // made once: the files read, the registry tokens and the connections serve every decision
  const plan = deps.sources ? undefined : createSourcePlan(config.sources);
  const sourcesFor =
    deps.sources ??
    ((r: CheckRequest) =>
      plan!.forRequest(r.bundles ?? [], { images: r.subjects.some((s) => s.image) }));
  let resolver: ReturnType<typeof createImageResolver> | undefined;

  /** Images named by reference become subjects: each tag resolved once, under the deadline. */
  async function withImages(req: CheckRequest, deadline: Deadline): Promise<CheckRequest> {
    if (!req.images?.length) return req;
    // the registry client is loaded with the first image named (issue 11: the CLI's cold start)
    const { createImageResolver } = await import('./collect/oci-image.js');
    resolver ??= createImageResolver({ ...config.sources.oci, http: sharedClient() });
    const r = resolver;
    const images = await Promise.all(req.images.map((i) => r.resolve(i, deadline.signal)));
    const { images: _, ...rest } = req;
    return { ...rest, subjects: [...req.subjects, ...images] };
  }
  const now = deps.now ?? (() => new Date());
  const newId = deps.newId ?? randomUUID;
  const identities = config.identities?.length
    ? compileIdentityRules(config.identities)
    : ('any' as const);
  const cache = deps.verifyCache ?? createVerifyCache(config.verifyCache);
  const verifyContext = { trust, identities, keys: config.keys, cache };
  const rules = breakGlassRulesOf(
    data ?? mergeData({}, { gate: { config: config.policy.config } }),
  );
  const lock = createLock();
  const retryMs = deps.outboxRetryMs ?? OUTBOX_RETRY_MS;
  const retries = outbox ? setInterval(() => void deliver(outbox), retryMs) : undefined;
  retries?.unref();
  // Announcements a webhook did not take before (an earlier `gate check` whose webhook was down)
  // are tried once as a gate starts, backoff permitting, not only at the first interval or with
  // the next override: CI runs only `gate check`, whose announcement waited in the outbox until
  // another override came (test/faults/breakglass.test.ts, issue 12).
  if (outbox) void deliver(outbox);

  async function check(asked: CheckRequest): Promise<Decision> {
    const deadline = deadlineOf(config.deadlineMs, asked.deadlineMs);
    // The record may wait (another process's write lock) a little past the deadline, no longer:
    // a caller like Kubernetes gives up soon after, and an answer nobody reads must not be an
    // allow in the ledger. Past this the decision is not recorded and cannot stand.
    const recordUntil = Date.now() + deadline.ms + Math.min(RECORD_GRACE_MS, deadline.ms / 4);
    const req = admitRequest(await withImages(asked, deadline));
    const decidedAt = now();
    // `at` answers an auditor's question: what would the gate have said then?
    const time = req.at ?? decidedAt;
    const digests = req.subjects.map((s) => s.digest);
    const collected = await collectAll(await sourcesFor(req), req, deadline);
    const outcomes = verifyEvidence(collected.evidence, digests, verifyContext);
    if (req.breakGlassId && req.breakGlass?.length)
      throw new GateError(
        'USAGE_ERROR',
        'name a stored break-glass request or present its bundles, not both',
      );
    const bgContext = { trust, keys: config.keys, now: time, rules };
    // a stored request named by id (admission's annotation, --break-glass-id), else bundles
    const bg = req.breakGlassId
      ? await useStored(req.breakGlassId, digests, req.environment, bgContext, ledger)
      : await notRevoked(
          ledger,
          checkPresented(req.breakGlass, digests, req.environment, bgContext),
        );
    // settled from here (only read), and serialised once for the digest, the policy and the ledger
    const input = settledJson(
      policyInputOf({
        ...{ subjects: req.subjects.map(policySubject), environment: req.environment, time },
        ...{ outcomes, collectRejected: collected.rejected, context: req.context },
        breakGlass: bg.accepted ? [bg.accepted] : [],
      }),
    );
    const result = evaluateInput(policy, input);
    const facts = factsOf(req, decidedAt, input, collected, outcomes);
    const judge = (usable: BreakGlassResult, refused: BreakGlassRefusal[] = []) =>
      assemble(
        facts,
        decide({
          policy: result,
          failures: collected.failures,
          mode: facts.mode,
          override: usable.accepted,
        }),
        [...usable.refused, ...refused],
      );
    // Single use is checked and the override recorded under one lock: one request cannot
    // override twice even when two decisions race.
    const release = bg.accepted ? await lock() : () => {};
    try {
      const usable = await singleUse((id) => ledger.consumed(id), bg);
      const recorded = await record(announce(judge(usable)), input, recordUntil);
      if (!usable.accepted || recorded.error?.code !== 'BREAK_GLASS_REPLAYED') {
        if (recorded.outcome === 'override') void deliver(outbox);
        return recorded;
      }
      // Another process (a second CLI on the same file, another replica) recorded an override
      // with this request first: the decision is made again without it.
      // (or it was revoked before this use could be recorded: the ledger's order decides)
      const why = 'was used by an override another process recorded first';
      const refusal = await lostRace(
        ledger,
        usable.accepted.requestId,
        replayRefusal(usable.accepted.requestId, why),
      );
      return await record(
        judge({ accepted: undefined, refused: usable.refused }, [refusal]),
        input,
        recordUntil,
      );
    } finally {
      release();
    }
  }

  function factsOf(
    req: CheckRequest,
    decidedAt: Date,
    input: PolicyInput,
    collected: CollectResult,
    outcomes: EvidenceOutcome[],
  ): DecisionFacts {
    return {
      id: newId(),
      time: decidedAt.toISOString(),
      ...(req.at ? { asOf: input.effectiveTime } : {}),
      gateVersion: VERSION,
      environment: req.environment,
      subjects: input.subjects,
      mode: req.dryRun ? 'dry-run' : config.mode,
      evidence: evidenceReports(collected.rejected, outcomes),
      sourceFailures: collected.failures,
      ...(collected.searched?.length ? { searched: collected.searched } : {}),
      digests: {
        policy: policy.digest,
        trustRoot: trust.digest,
        config: config.digest,
        input: sha256Hex(jsonText(input)),
      },
      ...contextMark(req.context),
      ...recheckMark(req),
    };
  }

  /**
   * Every override is announced: the announcement is durable in the outbox before the override
   * is recorded and answered. If it cannot be written, the gate does not override.
   */
  function announce(d: Decision): Decision {
    if (d.outcome !== 'override' || !outbox) return d;
    try {
      outbox.enqueue(breakGlassMessage(d));
      return d;
    } catch (err) {
      return couldNotStand(d, 'NOTIFY_UNAVAILABLE', toGateError(err).message);
    }
  }

  /** A decision is answered only once its record is durable. */
  async function record(d: Decision, input: PolicyInput, until?: number): Promise<Decision> {
    try {
      await ledger.append(d, input, until === undefined ? {} : { until });
      // recorded first, then streamed: see sink-outbox.ts for why a crash between loses nothing
      sinks?.enqueue(d);
      return d;
    } catch (err) {
      const e = toGateError(err, 'LEDGER_UNAVAILABLE');
      return couldNotStand(d, e.code, e.message);
    }
  }

  return {
    check,
    summarize: (d) => summarize(d, config.vsa, data),
    close: async () => {
      clearInterval(retries);
      await resolver?.close();
      await plan?.close();
      await recovering;
      await sinks?.close();
      await ledger.close();
    },
    policy,
    trust,
    outbox,
    policyData: data,
    ledger: 'query' in opened ? (opened as AuditLedger) : undefined,
    verifyCacheStats: () => cache.stats(),
    breakGlass: {
      register: (bundles) =>
        registerRequest(bundles, { trust, keys: config.keys, now: now(), rules }, ledger, newId),
      lookup: (requestId) => lookupRequest(ledger, requestId),
      revoke: (requestId, via, reason) =>
        revokeRequest(requestId, {
          ledger,
          now: now(),
          via,
          newId,
          ...(reason ? { reason } : {}),
        }),
    },
    ...(sinks ? { sinks } : {}),
  };
}

function sinkOutboxFor(config: GateConfig, opts: GateDeps['sinkOutbox']): SinkOutbox | undefined {
  if (config.sinks.length === 0) return undefined;
  return createSinkOutbox({
    file: sinkOutboxPath(config.notify.outbox),
    sinks: config.sinks,
    // a decision is recorded at most its deadline and the grace after its time; a minute more
    // covers other processes on the same ledger with other deadlines and clocks
    recoverSlackMs: config.deadlineMs + RECORD_GRACE_MS + 60_000,
    ...opts,
  });
}

/** admitRequest and the image resolution keep the request's fields: the link survives them */
function recheckMark(req: CheckRequest): Pick<Decision, 'recheckOf'> {
  const of = (req as RecheckRequest).recheckOf;
  return of ? { recheckOf: of } : {};
}

function outboxFor(notify: GateConfig['notify']): Outbox | undefined {
  if (notify.webhooks.length === 0) return undefined;
  return createOutbox({ file: notify.outbox, webhooks: notify.webhooks });
}

/** Delivery failures stay in the outbox for the next try; they never fail a decision. */
async function deliver(outbox: Outbox | undefined): Promise<void> {
  await outbox?.deliver().catch(() => undefined);
}

/**
 * Replay needs the exact policy each decision was made with: it is stored beside the ledger
 * before the first record that names it, as part of making that record durable.
 */
function storingPolicy(opened: Ledger, store: PolicyStore, policy: CompiledPolicy): Ledger {
  let stored = false;
  return {
    append: async (decision, input, opts) => {
      if (!stored) store.save(policy);
      stored = true;
      await opened.append(decision, input, opts);
    },
    consumed: (id) => opened.consumed(id),
    // break-glass records carry no policy: nothing to store before them
    ...(opened.appendBreakGlass ? { appendBreakGlass: opened.appendBreakGlass.bind(opened) } : {}),
    ...(opened.breakGlassRequest
      ? { breakGlassRequest: opened.breakGlassRequest.bind(opened) }
      : {}),
    close: () => opened.close(),
  };
}
