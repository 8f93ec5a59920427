import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** the body as sent */
  text: string;
  status: number;
}

/**
 * A real receiver on 127.0.0.1 for the decision stream: down (nothing listens: connection
 * refused), failing (503), hanging (reads the request, never answers) or up (200), on one port
 * throughout so the sink's url never changes.
 */
export class SinkReceiver {
  mode: 'up' | 'fail' | 'hang' = 'up';
  readonly seen: Received[] = [];
  /** when set, requests past this many accepted are answered 503 */
  acceptAtMost: number | undefined;
  /** requests read in full and left unanswered (mode hang) */
  hanging = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number) {}

  /** Reserves a free port and leaves it closed: the receiver starts down. */
  static async down(): Promise<SinkReceiver> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return new SinkReceiver(port);
  }

  static async up(): Promise<SinkReceiver> {
    const r = await SinkReceiver.down();
    await r.start('up');
    return r;
  }

  url(path = ''): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The bodies of the requests it accepted. */
  accepted(): any[] {
    return this.seen.filter((r) => r.status === 200).map((r) => r.body);
  }

  async start(mode: SinkReceiver['mode'] = 'up'): Promise<void> {
    this.mode = mode;
    if (this.server) return;
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (d) => (text += d));
      req.on('end', () => {
        if (this.mode === 'hang') return void this.hanging++;
        const full = this.acceptAtMost !== undefined && this.accepted().length >= this.acceptAtMost;
        const status = this.mode === 'up' && !full ? 200 : 503;
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = { unparsable: text };
        }
        this.seen.push({ path: req.url!, headers: req.headers, body, text, status });
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

/**
 * Checks an OTLP/HTTP JSON logs export (opentelemetry-proto logs/v1, ExportLogsServiceRequest)
 * as a collector's JSON decoder would read it; returns what is wrong, or nothing.
 */
export function otlpProblems(body: any): string[] {
  const problems: string[] = [];
  const need = (ok: boolean, what: string) => void (ok || problems.push(what));
  need(Array.isArray(body?.resourceLogs) && body.resourceLogs.length > 0, 'resourceLogs');
  for (const rl of body?.resourceLogs ?? []) {
    need(Array.isArray(rl.resource?.attributes), 'resource.attributes');
    need(Array.isArray(rl.scopeLogs), 'scopeLogs');
    for (const sl of rl.scopeLogs ?? []) {
      need(typeof sl.scope?.name === 'string', 'scope.name');
      need(Array.isArray(sl.logRecords), 'logRecords');
      for (const lr of sl.logRecords ?? []) {
        need(/^[0-9]+$/.test(lr.timeUnixNano), 'timeUnixNano as a decimal string');
        need(Number.isInteger(lr.severityNumber) && lr.severityNumber >= 1, 'severityNumber');
        need(lr.severityNumber <= 24, 'severityNumber in 1..24');
        need(typeof lr.body?.stringValue === 'string', 'body.stringValue');
        need(Array.isArray(lr.attributes), 'attributes');
        for (const a of lr.attributes ?? []) {
          need(typeof a.key === 'string', 'attribute key');
          const kinds = Object.keys(a.value ?? {});
          need(
            kinds.length === 1 && ['stringValue', 'boolValue', 'arrayValue'].includes(kinds[0]!),
            `attribute ${a.key} value`,
          );
        }
      }
    }
  }
  return problems;
}

/** The OTLP log records of every accepted export, with their attributes as a plain object. */
export function otlpRecords(bodies: any[]): Array<Record<string, unknown>> {
  return bodies.flatMap((b) =>
    b.resourceLogs.flatMap((rl: any) =>
      rl.scopeLogs.flatMap((sl: any) =>
        sl.logRecords.map((lr: any) => {
          const attrs: Record<string, unknown> = {};
          for (const a of lr.attributes) {
            const v = a.value;
            attrs[a.key] =
              v.stringValue ?? v.boolValue ?? v.arrayValue?.values.map((x: any) => x.stringValue);
          }
          return { ...attrs, severityNumber: lr.severityNumber, body: lr.body.stringValue };
        }),
      ),
    ),
  );
}
