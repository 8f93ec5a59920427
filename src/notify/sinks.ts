import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import { VERSION } from '../util/version.js';
import { eventSummary, type DecisionEvent } from './sink-event.js';

/** Where recorded decisions are streamed (gate.yaml `sinks`), with its secrets already read. */
export interface SinkConfig {
  /** names the sink in the outbox: what it has taken is tracked under this name */
  name: string;
  type: 'http-json' | 'otlp-http';
  url: string;
  /** http-json only: the body's shape (default json) */
  format?: 'json' | 'splunk-hec' | 'loki';
  /** sent with every request: the configured ones and those read from the environment */
  headers: Record<string, string>;
}

/** What one delivery attempt achieved: the ids the sink took, and why the rest were not. */
export interface SendResult {
  delivered: string[];
  error?: string;
}

/** Requests one sink has in flight at once (json: one a decision). */
const PARALLEL = 16;

/**
 * Sends events to one sink: `json` posts one JSON object per decision, up to PARALLEL in flight;
 * `splunk-hec` and `loki` post a batch per request, as those endpoints take them; otlp-http posts
 * them all as one OTLP/HTTP JSON export request to `/v1/logs`.
 */
export async function sendToSink(
  sink: SinkConfig,
  events: DecisionEvent[],
  timeoutMs: number,
): Promise<SendResult> {
  const all = async (body: string, url = sink.url): Promise<SendResult> => {
    const error = await post(sink, url, body, timeoutMs);
    return error ? { delivered: [], error } : { delivered: events.map((e) => e.id) };
  };
  if (sink.type === 'otlp-http') return all(JSON.stringify(otlpLogs(events)), otlpUrl(sink.url));
  if (sink.format === 'splunk-hec' || sink.format === 'loki')
    return all(batchBody(sink.format, events));
  const delivered: string[] = [];
  let error: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < events.length && !error) {
      const e = events[next++]!;
      const failed = await post(sink, sink.url, JSON.stringify(e), timeoutMs);
      if (failed) error ??= failed;
      else delivered.push(e.id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, events.length) }, worker));
  return error ? { delivered, error } : { delivered };
}

/**
 * The batched shapes: Splunk HEC's `/services/collector/event` takes event envelopes one after
 * another in one body; Loki's `POST /loki/api/v1/push` takes streams (one per label set: the
 * environment and the outcome) of `[nanoseconds, line]` values, each line the event's JSON.
 */
export function batchBody(format: 'splunk-hec' | 'loki', events: DecisionEvent[]): string {
  if (format === 'splunk-hec') {
    return events
      .map((e) =>
        JSON.stringify({
          time: Date.parse(e.time) / 1000,
          source: 'gate',
          sourcetype: 'gate:decision',
          event: e,
        }),
      )
      .join('\n');
  }
  const streams = new Map<string, { stream: Record<string, string>; values: string[][] }>();
  for (const e of events) {
    const key = `${e.environment}\n${e.outcome}`;
    let s = streams.get(key);
    if (!s) {
      s = {
        stream: { service_name: 'gate', environment: e.environment, outcome: e.outcome },
        values: [],
      };
      streams.set(key, s);
    }
    s.values.push([nanos(Date.parse(e.time)), JSON.stringify(e)]);
  }
  return JSON.stringify({ streams: [...streams.values()] });
}

/** A collector's base url gets the logs path; a url already naming it is used as it is. */
function otlpUrl(url: string): string {
  return /\/v1\/logs\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/v1/logs`;
}

/** OpenTelemetry severity numbers: INFO 9, WARN 13, ERROR 17. */
function severity(e: DecisionEvent): { severityNumber: number; severityText: string } {
  if (e.outcome === 'allow') return { severityNumber: 9, severityText: 'INFO' };
  if (e.outcome === 'error') return { severityNumber: 17, severityText: 'ERROR' };
  return { severityNumber: 13, severityText: 'WARN' };
}

type AnyValue =
  { stringValue: string } | { boolValue: boolean } | { arrayValue: { values: AnyValue[] } };

const str = (stringValue: string): AnyValue => ({ stringValue });
const list = (values: string[]): AnyValue => ({ arrayValue: { values: values.map(str) } });

/**
 * An OTLP ExportLogsServiceRequest in the protobuf JSON encoding (opentelemetry-proto's
 * logs/v1): 64-bit times as decimal strings, attributes as key/value pairs with typed values.
 */
export function otlpLogs(events: DecisionEvent[]): unknown {
  const observed = nanos(Date.now());
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: str('gate') }] },
        scopeLogs: [
          {
            scope: { name: 'gate', version: VERSION },
            logRecords: events.map((e) => ({
              timeUnixNano: nanos(Date.parse(e.time)),
              observedTimeUnixNano: observed,
              ...severity(e),
              eventName: 'gate.decision',
              body: str(eventSummary(e)),
              attributes: attributesOf(e),
            })),
          },
        ],
      },
    ],
  };
}

function attributesOf(e: DecisionEvent): Array<{ key: string; value: AnyValue }> {
  const attrs: Array<[string, AnyValue | undefined]> = [
    ['gate.decision.id', str(e.id)],
    ['gate.outcome', str(e.outcome)],
    ['gate.allow', { boolValue: e.allow }],
    ['gate.mode', str(e.mode)],
    ['deployment.environment.name', str(e.environment)],
    ['gate.subjects', list(e.subjects.map((s) => s.digest))],
    ['gate.rules', list(e.violations.map((v) => v.id))],
    ['gate.error.code', e.error ? str(e.error.code) : undefined],
    ['gate.override.request_id', e.override ? str(e.override.requestId) : undefined],
    ['gate.override.requester', e.override ? str(e.override.requester) : undefined],
    ['gate.recheck_of.id', e.recheckOf ? str(e.recheckOf.id) : undefined],
    ['gate.recheck_of.outcome', e.recheckOf ? str(e.recheckOf.outcome) : undefined],
    ['gate.policy.digest', e.digests.policy ? str(e.digests.policy) : undefined],
  ];
  return attrs.flatMap(([key, value]) => (value ? [{ key, value }] : []));
}

/** Epoch ms as nanoseconds in a decimal string (a 64-bit integer does not fit a JSON number). */
function nanos(ms: number): string {
  return `${BigInt(Math.trunc(ms)) * 1_000_000n}`;
}

// undici is loaded with the first delivery, not with the gate (the CLI's cold start)
const require = createRequire(import.meta.url);
let agent: Dispatcher | undefined;

/** undici's request over one pooled, kept-alive agent: a fraction of fetch's cost per request. */
async function post(
  sink: SinkConfig,
  url: string,
  body: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const undici = require('undici') as typeof import('undici');
  agent ??= new undici.Agent({ connections: PARALLEL, keepAliveTimeout: 10_000 });
  try {
    const res = await undici.request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { ...sink.headers, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump().catch(() => undefined);
    return res.statusCode >= 200 && res.statusCode < 300 ? undefined : `http ${res.statusCode}`;
  } catch (err) {
    const name = (err as Error).name;
    return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable';
  }
}
