import { describe, expect, it } from 'vitest';
import { normalise } from '../../src/config.js';
import { sinkOutboxPath } from '../../src/notify/sink-config.js';
import { expectCode } from '../helpers.js';

const load = (sinks: unknown[], env: Record<string, string> = {}) =>
  normalise({ sinks }, '/etc/gate', 'd'.repeat(64), 'gate.yaml', env);

describe('sinks in gate.yaml', () => {
  it('reads secrets from the environment into headers, never from the file', () => {
    const c = load(
      [
        { type: 'otlp-http', url: 'http://collector:4318', headers: { 'x-tenant': 'ci' } },
        {
          name: 'splunk',
          type: 'http-json',
          format: 'splunk-hec',
          url: 'https://splunk:8088/services/collector/event',
          headersEnv: { Authorization: 'HEC' },
        },
        { name: 'elastic', type: 'http-json', url: 'https://es:9200/gate/_doc', tokenEnv: 'ES' },
      ],
      { HEC: 'Splunk 1234', ES: 'es-token' },
    );
    expect(c.sinks).toEqual([
      {
        name: 'http://collector:4318',
        type: 'otlp-http',
        url: 'http://collector:4318',
        headers: { 'x-tenant': 'ci' },
      },
      {
        name: 'splunk',
        type: 'http-json',
        format: 'splunk-hec',
        url: 'https://splunk:8088/services/collector/event',
        headers: { Authorization: 'Splunk 1234' },
      },
      {
        name: 'elastic',
        type: 'http-json',
        url: 'https://es:9200/gate/_doc',
        headers: { authorization: 'Bearer es-token' },
      },
    ]);
    expect(load([]).sinks).toEqual([]);
    expect(sinkOutboxPath('/var/gate/outbox.jsonl')).toBe('/var/gate/outbox.sinks.jsonl');
  });

  it('refuses what would make a sink refuse every decision or be tracked under two names', () => {
    const url = 'http://collector:4318';
    expectCode(() => load([{ type: 'otlp-http', url, tokenEnv: 'T' }]), 'CONFIG_INVALID', /set T/);
    expectCode(
      () =>
        load([
          { type: 'otlp-http', url },
          { type: 'otlp-http', url },
        ]),
      'CONFIG_INVALID',
      /another sink is named/,
    );
    expectCode(
      () => load([{ type: 'otlp-http', url, format: 'loki' }]),
      'CONFIG_INVALID',
      /format is for http-json/,
    );
    expectCode(() => load([{ type: 'kafka', url }]), 'CONFIG_INVALID', /sinks\/0\/type/);
    expectCode(
      () => load([{ type: 'http-json', url: 'ftp://x' }]),
      'CONFIG_INVALID',
      /sinks\/0\/url/,
    );
    expectCode(() => load([{ type: 'http-json', url, token: 'x' }]), 'CONFIG_INVALID', /sinks\/0/);
  });
});
