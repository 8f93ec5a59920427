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

/** Requests one http-json sink has in flight at once. */
const PARALLEL = 8;

/**
 * Sends events to one sink: http-json posts one JSON object per decision (several in flight),
 * otlp-http posts them all as one OTLP/HTTP JSON export request to `/v1/logs`.
 */
export async function sendToSink(
  sink: SinkConfig,
  events: DecisionEvent[],
  timeoutMs: number,
): Promise<SendResult> {
  if (sink.type === 'otlp-http') {
    const error = await post(otlpUrl(sink.url), sink.headers, otlpLogs(events), timeoutMs);
    return error ? { delivered: [], error } : { delivered: events.map((e) => e.id) };
  }
  const delivered: string[] = [];
  let error: string | undefined;
  for (let i = 0; i < events.length && !error; i += PARALLEL) {
    const slice = events.slice(i, i + PARALLEL);
    const errors = await Promise.all(
      slice.map((e) => post(sink.url, sink.headers, httpBody(sink.format ?? 'json', e), timeoutMs)),
    );
    slice.forEach((e, j) => (errors[j] ? (error ??= errors[j]) : delivered.push(e.id)));
  }
  return error ? { delivered, error } : { delivered };
}

/**
 * The three shapes receivers take: `json` the event itself (Elasticsearch's `POST
 * /<index>/_doc`, Splunk HEC's `/services/collector/raw`, any JSON webhook); `splunk-hec` Splunk
 * HEC's `/services/collector/event` envelope; `loki` Loki's `POST /loki/api/v1/push` streams,
 * the event as the log line's JSON text.
 */
export function httpBody(format: NonNullable<SinkConfig['format']>, e: DecisionEvent): unknown {
  const ms = Date.parse(e.time);
  switch (format) {
    case 'json':
      return e;
    case 'splunk-hec':
      return { time: ms / 1000, source: 'gate', sourcetype: 'gate:decision', event: e };
    case 'loki':
      return {
        streams: [
          {
            stream: { service_name: 'gate', environment: e.environment, outcome: e.outcome },
            values: [[nanos(ms), JSON.stringify(e)]],
          },
        ],
      };
  }
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

async function post(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? undefined : `http ${res.status}`;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
  }
}
