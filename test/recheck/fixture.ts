import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_IDENTITY, mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * What the recheck tests deploy: subjects whose vulnerability scans are signed by the local
 * Sigstore services, production needing a scan with no finding at or above high unless waived,
 * and the default policy library. `vulnerable` has a critical finding, CVE-2026-40001, under a
 * waiver that expires when the test says; `clean` has only a low one.
 */
export const CVE = 'CVE-2026-40001';
export const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');

export interface RecheckFixture {
  dir: string;
  svc: LocalSigstore;
  vulnerable: string;
  clean: string;
  /** a subject with no scan at all: denied */
  unscanned: string;
  /** writes gate.yaml: the waiver of `vulnerable` expiring at `waiverExpires` */
  writeConfig(o: {
    waiverExpires: Date;
    webhook?: string;
    name?: string;
    sinks?: object[];
  }): string;
  close(): Promise<void>;
}

export async function startRecheckFixture(): Promise<RecheckFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gate-recheck-'));
  const svc = await startLocalSigstore();
  writeFileSync(path.join(dir, 'trusted_root.json'), JSON.stringify(svc.trustedRoot));
  const evidence = path.join(dir, 'evidence');
  mkdirSync(evidence);
  const vulnerable = hex('vulnerable');
  const clean = hex('clean');
  for (const [subject, finding] of [
    [vulnerable, { id: CVE, severity: [{ method: 'CVSS_V3', score: '9.8' }] }],
    [clean, { id: 'GHSA-low-0000-0001', severity: [{ method: 'CVSS_V3', score: '3.1' }] }],
  ] as const) {
    const m = await mintDSSEBundle(svc, {
      statement: scan(subject, finding),
      version: '0.3',
      signer: 'keyless',
    });
    writeFileSync(
      path.join(evidence, `${subject.slice(0, 12)}.sigstore.json`),
      JSON.stringify(m.bundle),
    );
  }
  return {
    dir,
    svc,
    vulnerable,
    clean,
    unscanned: hex('unscanned'),
    writeConfig({ waiverExpires, webhook, name = 'gate.yaml', sinks }) {
      const file = path.join(dir, name);
      const doc = {
        trustedRoot: 'trusted_root.json',
        sources: { bundles: ['evidence'] },
        ledger: { path: 'ledger.db' },
        notify: {
          outbox: 'outbox.jsonl',
          ...(webhook ? { webhooks: [{ url: webhook }] } : {}),
        },
        ...(sinks ? { sinks } : {}),
        policy: {
          config: {
            attestors: {
              vulnerabilities: [{ san: DEFAULT_IDENTITY.san, issuer: DEFAULT_IDENTITY.issuer }],
            },
            environments: {
              production: {
                required_rules: ['vulnerabilities.present', 'vulnerabilities.severity'],
                vulnerabilities: { severity_threshold: 'high' },
              },
            },
            waivers: [
              {
                vulnerability: CVE,
                subject: `sha256:${vulnerable}`,
                environments: ['production'],
                owner: 'security@acme.example',
                expires: waiverExpires.toISOString(),
                reason: 'the vulnerable parser is not reachable',
              },
            ],
          },
        },
      };
      writeFileSync(file, JSON.stringify(doc, null, 2));
      return file;
    },
    async close() {
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function scan(subject: string, finding: object): object {
  const now = Date.now();
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app', digest: { sha256: subject } }],
    predicateType: 'https://in-toto.io/attestation/vulns/v0.2',
    predicate: {
      scanner: {
        uri: 'pkg:github/aquasecurity/trivy@v0.58.1',
        version: '0.58.1',
        result: [finding],
      },
      metadata: {
        scanStartedOn: new Date(now - 60_000).toISOString(),
        scanFinishedOn: new Date(now).toISOString(),
      },
    },
  };
}

/** A webhook receiver on 127.0.0.1 keeping every JSON body it is sent. */
export async function startWebhook(): Promise<{
  url: string;
  bodies: any[];
  close(): Promise<void>;
}> {
  const bodies: any[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
