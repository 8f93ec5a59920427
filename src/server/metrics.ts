import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Decision } from '../decision.js';
import type { CheckRequest, Gate } from '../gate.js';
import type { LoadStats } from './load.js';

export interface Metrics {
  registry: Registry;
  decisions: Counter<'outcome' | 'environment'>;
  duration: Histogram<'outcome'>;
  http: Counter<'method' | 'route' | 'status_code'>;
}

/** A registry per server: two servers in one process (tests, for one) never share counts. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  // the process's own: memory, heap, event-loop lag, handles (process_*, nodejs_*)
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    decisions: new Counter({
      name: 'decisions_total',
      help: 'decisions made, by outcome (allow, deny, override, error) and environment',
      labelNames: ['outcome', 'environment'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'decision_duration_seconds',
      help: 'time to collect, verify, evaluate and record one decision',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    http: new Counter({
      name: 'http_requests_total',
      help: 'http requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'status_code'],
      registers: [registry],
    }),
  };
}

/**
 * The decision streams to the configured sinks, per sink: events not yet taken (pending), events
 * taken since this process started (a counter), and whether the last delivery failed. A sink that
 * is down shows as pending climbing with failing at 1, long before anyone misses its data.
 */
export function installSinkMetrics(metrics: Metrics, gate: Pick<Gate, 'sinks'>): void {
  const sinks = gate.sinks;
  if (!sinks) return;
  const seen = new Map<string, number>();
  new Gauge({
    name: 'sink_events_pending',
    help: 'recorded decisions a sink has not yet taken (held in memory or in its stream file)',
    labelNames: ['sink'],
    registers: [metrics.registry],
    collect() {
      for (const [sink, s] of Object.entries(sinks.stats())) this.set({ sink }, s.pending);
    },
  });
  new Counter({
    name: 'sink_events_delivered_total',
    help: 'decisions a sink accepted from this process',
    labelNames: ['sink'],
    registers: [metrics.registry],
    collect() {
      for (const [sink, s] of Object.entries(sinks.stats())) {
        const before = seen.get(sink) ?? 0;
        if (s.delivered > before) this.inc({ sink }, s.delivered - before);
        seen.set(sink, s.delivered);
      }
    },
  });
  new Gauge({
    name: 'sink_failing',
    help: '1 while the last delivery to a sink failed (it is retried with backoff), else 0',
    labelNames: ['sink'],
    registers: [metrics.registry],
    collect() {
      for (const [sink, s] of Object.entries(sinks.stats()))
        this.set({ sink }, s.lastError === undefined ? 0 : 1);
    },
  });
}

/**
 * The verification cache as the gate counts it: hits and misses (counters, advanced by what the
 * gate counted since the last scrape), entries and the oldest entry's age (gauges).
 */
export function installCacheMetrics(metrics: Metrics, gate: Pick<Gate, 'verifyCacheStats'>): void {
  const seen = { hits: 0, misses: 0 };
  const advance = (counter: Counter, key: 'hits' | 'misses') => {
    const now = gate.verifyCacheStats()[key];
    if (now > seen[key]) counter.inc(now - seen[key]);
    seen[key] = now;
  };
  new Counter({
    name: 'verify_cache_hits_total',
    help: 'pieces of evidence whose verification result came from the cache',
    registers: [metrics.registry],
    collect() {
      advance(this, 'hits');
    },
  });
  new Counter({
    name: 'verify_cache_misses_total',
    help: 'pieces of evidence verified because the cache had no result for them',
    registers: [metrics.registry],
    collect() {
      advance(this, 'misses');
    },
  });
  new Gauge({
    name: 'verify_cache_entries',
    help: 'verification results held',
    registers: [metrics.registry],
    collect() {
      this.set(gate.verifyCacheStats().entries);
    },
  });
  new Gauge({
    name: 'verify_cache_oldest_age_seconds',
    help: 'age of the oldest verification result held',
    registers: [metrics.registry],
    collect() {
      this.set(gate.verifyCacheStats().oldestAgeMs / 1000);
    },
  });
}

/** The load limiter's state: decisions in progress and waiting (gauges), shed and abandoned. */
export function installLoadMetrics(metrics: Metrics, limiter: { stats(): LoadStats }): void {
  const gauge = (name: string, help: string, key: 'inFlight' | 'queued') =>
    new Gauge({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.set(limiter.stats()[key]);
      },
    });
  gauge('decisions_in_flight', 'decisions being made now', 'inFlight');
  gauge('decisions_queued', 'decisions waiting for a turn', 'queued');
  const seen = { shed: 0, abandoned: 0 };
  const counter = (name: string, help: string, key: 'shed' | 'abandoned') =>
    new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        const now = limiter.stats()[key];
        if (now > seen[key]) this.inc(now - seen[key]);
        seen[key] = now;
      },
    });
  counter('decisions_shed_total', 'requests answered 503 SERVER_OVERLOADED at once', 'shed');
  counter(
    'decisions_abandoned_total',
    'requests never started: the client went away while they waited',
    'abandoned',
  );
}

const MAX_ENVIRONMENTS = 50;

/**
 * The environment is whatever the caller sent: a label per distinct value would let any client
 * grow the registry without bound, so odd or excess names are counted as "other".
 */
function environmentLabel(env: string, seen: Set<string>): string {
  if (seen.has(env)) return env;
  if (!/^[A-Za-z0-9._-]{1,40}$/.test(env) || seen.size >= MAX_ENVIRONMENTS) return 'other';
  seen.add(env);
  return env;
}

/** Runs one check and counts it: the decisions and admission routes both decide through here. */
export function countedCheck(
  gate: Gate,
  metrics: Metrics,
): (req: CheckRequest) => Promise<Decision> {
  const seen = new Set<string>();
  return async (req) => {
    const stop = metrics.duration.startTimer();
    try {
      const decision = await gate.check(req);
      stop({ outcome: decision.outcome });
      metrics.decisions.inc({
        outcome: decision.outcome,
        environment: environmentLabel(req.environment, seen),
      });
      return decision;
    } catch (err) {
      stop({ outcome: 'error' });
      metrics.decisions.inc({
        outcome: 'error',
        environment: environmentLabel(req.environment, seen),
      });
      throw err;
    }
  };
}

/** Counts every response (by route pattern, never the raw URL) and serves GET /metrics. */
export function installMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.http.inc({ method: request.method, route, status_code: String(reply.statusCode) });
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
