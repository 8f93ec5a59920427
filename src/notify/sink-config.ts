import { GateError } from '../errors.js';
import type { SinkConfig } from './sinks.js';

export type { SinkConfig } from './sinks.js';

interface RawSink {
  name?: string;
  type: SinkConfig['type'];
  url: string;
  format?: SinkConfig['format'];
  tokenEnv?: string;
  headers?: Record<string, string>;
  headersEnv?: Record<string, string>;
}

/**
 * gate.yaml `sinks` (already checked against the schema) with their secrets read from `env`. A
 * secret that is not set is a CONFIG_INVALID error: a sink that would refuse every decision for
 * want of its token is better found at start than in an outbox growing for days.
 */
export function sinksConfig(raw: RawSink[], env: Readonly<Record<string, string | undefined>>) {
  const seen = new Set<string>();
  return raw.map((s, i): SinkConfig => {
    const where = `sinks[${i}]`;
    const name = s.name ?? s.url;
    if (seen.has(name)) {
      throw new GateError('CONFIG_INVALID', `${where}: another sink is named ${name}: name each`);
    }
    seen.add(name);
    if (s.format && s.type !== 'http-json') {
      throw new GateError('CONFIG_INVALID', `${where}: format is for http-json sinks only`);
    }
    const secret = (variable: string) => {
      const value = env[variable];
      if (!value) throw new GateError('CONFIG_INVALID', `${where}: set ${variable}`);
      return value;
    };
    const headers: Record<string, string> = { ...(s.headers ?? {}) };
    for (const [header, variable] of Object.entries(s.headersEnv ?? {}))
      headers[header] = secret(variable);
    if (s.tokenEnv) headers.authorization = `Bearer ${secret(s.tokenEnv)}`;
    return {
      name,
      type: s.type,
      url: s.url,
      ...(s.format ? { format: s.format } : {}),
      headers,
    };
  });
}

/**
 * The decision stream's base path, beside the announcements' outbox: `outbox.jsonl` ->
 * `outbox.sinks.jsonl`, and each sink's file beside that (sink-outbox.ts, sinkFile).
 */
export function sinkOutboxPath(notifyOutbox: string): string {
  return `${notifyOutbox.replace(/\.jsonl$/, '')}.sinks.jsonl`;
}
