import type { AuditLedger } from './audit/ledger.js';
import { recordedInput, type LedgerRecord } from './audit/record.js';
import type { Decision, Outcome } from './decision.js';
import { GateError } from './errors.js';
import type { PolicySubject } from './evaluate/input.js';
import type { Gate, RecheckRequest } from './gate.js';
import { ledgerPages } from './notify/ledger-pages.js';
import { driftMessage } from './notify/message.js';
import type { Subject } from './subject.js';
import { isPlainObject } from './util/input.js';

export interface RecheckOptions {
  /** only this environment (default: every environment) */
  environment?: string;
  /** decisions made at most this long ago (ms) */
  sinceMs: number;
  /** the window's end; default the clock (decisions are made at the gate's own `now`) */
  now?: () => Date;
  /** stops between two decisions: a recheck in progress ends with what it has */
  signal?: AbortSignal;
  /**
   * ids of decisions whose drift was announced already: not announced again (a server rechecking
   * every hour says it once); the ones announced now are added
   */
  announced?: Set<string>;
}

/**
 * unchanged: still allowed. drift: was allowed or overridden, would now be denied. covered: an
 * override whose break-glass request has not expired and overrode every violation found now.
 * undecided: the gate could not decide now (a source down, say): not drift, not fine either.
 */
export type RecheckStatus = 'unchanged' | 'drift' | 'covered' | 'undecided';

export interface RecheckItem {
  /** the recorded decision decided again (the newest for its subjects in its environment) */
  of: { id: string; time: string; outcome: Outcome; environment: string; subjects: string[] };
  /** the recheck's own decision, recorded with `recheckOf` */
  decision: Decision;
  status: RecheckStatus;
  reasons: string[];
}

export interface RecheckReport {
  environment?: string;
  from: string;
  to: string;
  items: RecheckItem[];
  drift: number;
  undecided: number;
  /** drift announcements written to the webhook outbox */
  announced: number;
  /** why announcements could not be written, when they could not */
  announceError?: string;
}

/**
 * `gate recheck`: every subject set allowed or overridden within the window is decided again,
 * through the gate's own check path (today's policy, trusted root and evidence), one decision at
 * a time so a recheck never takes more than one of the server's turns. Each result is recorded,
 * linked to the decision it rechecks; drift is announced through the webhook outbox (the
 * recorded decisions themselves go to the sinks like every other).
 */
export async function recheck(gate: Gate, o: RecheckOptions): Promise<RecheckReport> {
  const ledger = gate.ledger;
  if (!ledger) {
    throw new GateError(
      'USAGE_ERROR',
      'recheck reads the ledger: configure a sqlite or postgres ledger (a json lines ledger cannot be queried)',
    );
  }
  const to = (o.now ?? (() => new Date()))();
  const from = new Date(to.getTime() - o.sinceMs);
  const deployed = await deployedIn(ledger, o.environment, from.toISOString(), to.toISOString());
  const items: RecheckItem[] = [];
  for (const r of deployed) {
    if (o.signal?.aborted) break;
    items.push(await recheckOne(gate, r));
    // a turn for everything else waiting on this process between two rechecks
    await new Promise((resolve) => setImmediate(resolve));
  }
  const report: RecheckReport = {
    ...(o.environment ? { environment: o.environment } : {}),
    from: from.toISOString(),
    to: to.toISOString(),
    items,
    drift: items.filter((i) => i.status === 'drift').length,
    undecided: items.filter((i) => i.status === 'undecided').length,
    announced: 0,
  };
  return announce(gate, report, o.announced);
}

/**
 * The newest recorded allow or override of each subject set, per environment, in the window: read
 * a page at a time, keeping one record a subject set (a server admits the same images all day).
 */
async function deployedIn(
  ledger: AuditLedger,
  environment: string | undefined,
  from: string,
  to: string,
): Promise<LedgerRecord[]> {
  const newest = new Map<string, LedgerRecord>();
  for (const outcome of ['allow', 'override'] as const) {
    const q = { outcome, from, to, ...(environment ? { environment } : {}) };
    for await (const r of ledgerPages(ledger, q)) {
      const d = r.decision;
      // what was deployed: enforced decisions of now, not an auditor's --at, not a recheck
      if (!d || d.mode !== 'enforce' || d.asOf || d.recheckOf) continue;
      const key = `${r.environment}\n${[...r.subjects].sort().join(',')}`;
      const kept = newest.get(key);
      if (!kept || kept.time < r.time) newest.set(key, r);
    }
  }
  return [...newest.values()].sort((a, b) => b.time.localeCompare(a.time));
}

async function recheckOne(gate: Gate, r: LedgerRecord): Promise<RecheckItem> {
  const was = r.decision;
  const req: RecheckRequest = {
    subjects: was.subjects.map(subjectOf),
    environment: was.environment,
    ...contextOf(r),
    recheckOf: { id: was.id, outcome: was.outcome },
  };
  const decision = await gate.check(req);
  const of = {
    id: was.id,
    time: was.time,
    outcome: was.outcome,
    environment: was.environment,
    subjects: r.subjects,
  };
  return { of, decision, ...judge(was, decision) };
}

/** Was allowed (or overridden); what is it now, and why. */
export function judge(was: Decision, now: Decision): { status: RecheckStatus; reasons: string[] } {
  if (now.outcome === 'allow') return { status: 'unchanged', reasons: [] };
  if (now.outcome === 'error') {
    return { status: 'undecided', reasons: [`${now.error?.code}: ${now.error?.message}`] };
  }
  const reasons = now.violations.map((v) => `${v.id}: ${v.message}`);
  const o = was.override;
  if (o) {
    const uncovered = now.violations.filter((v) => !o.overridden.includes(v.id)).map((v) => v.id);
    const live = Date.parse(o.expiresAt) > Date.parse(now.time);
    if (live && uncovered.length === 0) {
      return {
        status: 'covered',
        reasons: [`still overridden by break-glass request ${o.requestId} until ${o.expiresAt}`],
      };
    }
    if (!live) reasons.push(`break-glass request ${o.requestId} expired at ${o.expiresAt}`);
    else
      reasons.push(`break-glass request ${o.requestId} did not override ${uncovered.join(', ')}`);
  }
  if (was.digests.policy && now.digests.policy && was.digests.policy !== now.digests.policy) {
    reasons.push(`the policy changed: ${was.digests.policy} then, ${now.digests.policy} now`);
  }
  if (was.digests.trustRoot !== now.digests.trustRoot) {
    reasons.push(
      `the trusted root changed: ${was.digests.trustRoot} then, ${now.digests.trustRoot} now`,
    );
  }
  return { status: 'drift', reasons };
}

/** Drift is announced through the webhook outbox: durable there before the report is answered. */
async function announce(
  gate: Gate,
  report: RecheckReport,
  already = new Set<string>(),
): Promise<RecheckReport> {
  const outbox = gate.outbox;
  const drifted = report.items.filter((i) => i.status === 'drift' && !already.has(i.of.id));
  if (!outbox || drifted.length === 0) return report;
  try {
    for (const i of drifted) {
      outbox.enqueue(driftMessage({ was: i.of, now: i.decision, reasons: i.reasons }));
      already.add(i.of.id);
      report.announced++;
    }
  } catch (err) {
    report.announceError = (err as Error).message;
  }
  await outbox.deliver().catch(() => undefined);
  return report;
}

function subjectOf(s: PolicySubject): Subject {
  const [algorithm, hex] = Object.entries(s.digest)[0]!;
  return {
    digest: { algorithm: algorithm as Subject['digest']['algorithm'], hex },
    ...(s.name ? { name: s.name } : {}),
    ...(s.version ? { version: s.version } : {}),
    ...(s.image ? { image: s.image } : {}),
  };
}

/** The caller's context, as recorded: the policy sees the same information it was given then. */
function contextOf(r: LedgerRecord): { context?: Record<string, unknown> } {
  try {
    const input = recordedInput(r) as { context?: unknown };
    return isPlainObject(input.context) && Object.keys(input.context).length
      ? { context: input.context as Record<string, unknown> }
      : {};
  } catch {
    return {};
  }
}

/** `7d`, `12h`, `30m`, `45s`: a positive whole number and its unit. */
export function parseDuration(text: string, flag: string): number {
  const m = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text);
  if (!m) {
    throw new GateError(
      'USAGE_ERROR',
      `${flag} must be a whole number of s, m, h or d (like 7d or 1h), got ${JSON.stringify(text)}`,
    );
  }
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

export interface RecheckSchedule {
  /** no further recheck starts; resolves once the one in progress has stopped */
  stop(): Promise<void>;
}

/**
 * `gate serve --recheck-every`: a recheck every `everyMs`, the first one interval after the start,
 * never two at once (the next is scheduled when one ends). Each decides one subject set at a
 * time, so it holds at most one decision's worth of the server beside the requests it serves.
 */
export function scheduleRechecks(
  gate: Gate,
  o: Omit<RecheckOptions, 'signal'> & {
    everyMs: number;
    onReport: (r: RecheckReport) => void;
    onError: (err: unknown) => void;
  },
): RecheckSchedule {
  const stopping = new AbortController();
  const announced = new Set<string>();
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    timer = setTimeout(() => {
      running = recheck(gate, { ...o, signal: stopping.signal, announced })
        .then(o.onReport, o.onError)
        .finally(() => {
          if (!stopping.signal.aborted) next();
        });
    }, o.everyMs);
    timer.unref();
  };
  next();
  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await running;
    },
  };
}

/** The logger `gate serve` has (pino's shape: an object of fields, then the message). */
export interface RecheckLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * `gate serve --recheck-every D [--recheck-since D] [--recheck-env NAME]`: the schedule, or
 * nothing without --recheck-every. Each recheck is logged as one line, each drift as another.
 */
export function serveRechecks(
  gate: Gate,
  flags: { recheckEvery?: string; recheckSince?: string; recheckEnv?: string },
  log: RecheckLog,
): RecheckSchedule | undefined {
  if (flags.recheckEvery === undefined) {
    if (flags.recheckEnv !== undefined)
      throw new GateError('USAGE_ERROR', '--recheck-env goes with --recheck-every');
    return undefined;
  }
  const everyMs = parseDuration(flags.recheckEvery, '--recheck-every');
  const sinceMs = parseDuration(flags.recheckSince ?? '7d', '--recheck-since');
  if (!gate.ledger) {
    throw new GateError(
      'USAGE_ERROR',
      '--recheck-every reads the ledger: use a sqlite or postgres ledger',
    );
  }
  return scheduleRechecks(gate, {
    everyMs,
    sinceMs,
    ...(flags.recheckEnv ? { environment: flags.recheckEnv } : {}),
    onReport: (r) => {
      for (const i of r.items.filter((x) => x.status === 'drift')) {
        log.warn(
          {
            recheck: {
              was: i.of.id,
              now: i.decision.id,
              subjects: i.of.subjects,
              reasons: i.reasons,
            },
          },
          `drift in ${i.of.environment}: ${i.of.subjects.join(', ')} would now be denied`,
        );
      }
      log.info(
        {
          recheck: {
            from: r.from,
            to: r.to,
            rechecked: r.items.length,
            drift: r.drift,
            undecided: r.undecided,
          },
        },
        'recheck done',
      );
    },
    onError: (err) => log.error({ err }, `recheck failed: ${(err as Error).message}`),
  });
}
