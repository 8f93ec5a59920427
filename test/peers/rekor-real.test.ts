import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../src/util/paths.js';
import { reportFault } from '../faults/report.js';
import {
  attestBlobArgs,
  COSIGN,
  peer,
  trustedRootArgs,
  verifyBlobAttestationArgs,
  type Peer,
} from '../support/peers.js';
import { startRealRekor, type RealRekor } from '../support/rekor-peer.js';

/**
 * The real Rekor v1 log (rekor-server v1.5.4 on Trillian v1.7.3 and MariaDB, test/support/
 * rekor-peer.ts) and the real cosign v3.1.2, all on 127.0.0.1 (issue 13). cosign logs a key-signed
 * SLSA provenance attestation (a dsse entry, with its bundle); the gate finds the entry by the
 * subject's digest, joins it with the envelope of the bundle found in a folder, and says which
 * entry it could not join when no source holds the envelope. cosign verifies the same bundle
 * with the same trusted root (made by `cosign trusted-root create`).
 */
const CLI = packagePath('dist', 'cli', 'main.js');
const POLICY = packagePath('test', 'fixtures', 'policies', 'requires-provenance');
const ARTIFACT = 'real rekor artifact\n';
const HEX = createHash('sha256').update(ARTIFACT).digest('hex');
const PROVENANCE = 'https://slsa.dev/provenance/v1';
const ENV = { COSIGN_PASSWORD: 'correct horse' };

let rekor: RealRekor;
let cosign: Peer;

beforeAll(async () => {
  rekor = await startRealRekor();
  cosign = peer(COSIGN);
  await cosign.run(['generate-key-pair'], ENV);
  writeFileSync(path.join(cosign.dir, 'artifact.txt'), ARTIFACT);
  mkdirSync(path.join(cosign.dir, 'evidence'));
  writeFileSync(
    path.join(cosign.dir, 'provenance.json'),
    JSON.stringify({
      buildDefinition: { buildType: 'https://example.com/build/v1' },
      runDetails: { builder: { id: 'https://example.com/builder' } },
    }),
  );
  await cosign.run(
    attestBlobArgs({
      predicate: 'provenance.json',
      type: PROVENANCE,
      bundle: 'evidence/provenance.sigstore.json',
      artifact: 'artifact.txt',
      rekorUrl: rekor.url,
    }),
    ENV,
  );
  writeFileSync(path.join(cosign.dir, 'rekor.pub'), rekor.publicKeyPem);
  await cosign.run(trustedRootArgs(rekor.url));
}, 180_000);
afterAll(async () => {
  await rekor?.stop();
});

async function gateCheck(config: string): Promise<{ code: number; decision: any }> {
  writeFileSync(path.join(cosign.dir, 'gate.yaml'), config);
  const args = ['check', '--config', 'gate.yaml', '--subject', `sha256:${HEX}`, '--env', 'dev'];
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, ...args, '--format', 'json'],
      {
        cwd: cosign.dir,
      },
    );
    return { code: 0, decision: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, decision: JSON.parse(e.stdout) };
  }
}

const base = (sources: string) =>
  [
    'trustedRoot: trusted_root.json',
    'keys: [{ path: cosign.pub }]',
    `sources: ${sources}`,
    `policy: { path: ${POLICY} }`,
    'ledger: { path: ledger.db }',
    '',
  ].join('\n');

describe('the real Rekor v1 log and cosign v3', () => {
  it('cosign verifies its bundle offline with the trusted root it made', async () => {
    const { stderr } = await cosign.run(
      verifyBlobAttestationArgs({ bundle: 'evidence/provenance.sigstore.json', type: PROVENANCE }),
    );
    expect(stderr).toMatch(/Verified OK/);
  });

  it('the gate finds the dsse entry by digest and joins it with the bundle found in a folder', async () => {
    const { code, decision } = await gateCheck(
      base(`{ bundles: [evidence], rekor: { url: "${rekor.url}" } }`),
    );
    expect(decision.outcome).toBe('allow');
    expect(code).toBe(0);
    const sources = decision.evidence.map((e: { source: string }) => e.source.split(':')[0]);
    expect(sources).toEqual(['file', 'rekor']);
    for (const e of decision.evidence) {
      expect(e).toMatchObject({
        status: 'verified',
        predicateType: PROVENANCE,
        signer: { kind: 'key' },
        logIndex: expect.stringMatching(/^\d+$/),
        tlog: 'inclusion-proof',
      });
    }
  });

  it('says which entry it could not join when no source holds its envelope', async () => {
    const { code, decision } = await gateCheck(base(`{ rekor: { url: "${rekor.url}" } }`));
    expect(decision.outcome).toBe('deny');
    expect(code).toBe(1);
    expect(decision.evidence).toMatchObject([
      {
        status: 'rejected',
        code: 'EVIDENCE_CONTENT_MISSING',
        message: expect.stringMatching(/^dsse entry [0-9a-f]+ .*no other source supplied/),
      },
    ]);
  });
});

describe('every kind of entry cosign and rekor-cli write, found by the subject digest', () => {
  const TYPES = {
    tests: 'https://in-toto.io/attestation/test-result/v0.1',
    vulns: 'https://in-toto.io/attestation/vulns/v0.2',
  };
  let found: any;

  beforeAll(async () => {
    mkdirSync(path.join(cosign.dir, 'more'));
    writeFileSync(
      path.join(cosign.dir, 'tests.json'),
      JSON.stringify({ result: 'PASSED', configuration: [], passedTests: ['unit'] }),
    );
    writeFileSync(
      path.join(cosign.dir, 'vulns.json'),
      JSON.stringify({ scanner: { uri: 'https://example.com/scanner', result: [] } }),
    );
    const logged = ['--use-signing-config=false', '--rekor-url', rekor.url];
    for (const [name, type] of Object.entries(TYPES)) {
      await cosign.run(
        attestBlobArgs({
          predicate: `${name}.json`,
          type,
          bundle: `more/${name}.sigstore.json`,
          artifact: 'artifact.txt',
          rekorUrl: rekor.url,
        }),
        ENV,
      );
    }
    // a plain signature of the artifact: a hashedrekord entry
    await cosign.run(
      [
        'sign-blob',
        '--yes',
        '--key',
        'cosign.key',
        '--bundle',
        'signature.sigstore.json',
        ...logged,
        'artifact.txt',
      ],
      ENV,
    );
    // the provenance envelope again, as an intoto v0.0.2 entry, whose statement the log keeps
    const bundle = JSON.parse(
      readFileSync(path.join(cosign.dir, 'evidence', 'provenance.sigstore.json'), 'utf8'),
    );
    writeFileSync(path.join(cosign.dir, 'envelope.json'), JSON.stringify(bundle.dsseEnvelope));
    await promisify(execFile)(
      packagePath('.tools', 'bin', 'rekor-cli'),
      [
        'upload',
        '--rekor_server',
        rekor.url,
        '--type',
        'intoto:0.0.2',
        '--artifact',
        'envelope.json',
        '--public-key',
        'cosign.pub',
      ],
      { cwd: cosign.dir, env: { ...process.env, HOME: cosign.dir } },
    );
    // the search index is written just after an upload returns
    await new Promise((r) => setTimeout(r, 1000));
    found = (await gateCheck(base(`{ bundles: [more], rekor: { url: "${rekor.url}" } }`))).decision;
  }, 180_000);

  const bySource = (kind: string) =>
    found.evidence.filter((e: { source: string }) => e.source.startsWith(kind));

  it('joins the test-result and vulnerability dsse entries with their bundles', () => {
    const verified = found.evidence
      .filter((e: { status: string }) => e.status === 'verified')
      .map(
        (e: { predicateType: string; source: string }) =>
          `${e.source.split(':')[0]} ${e.predicateType}`,
      );
    for (const type of Object.values(TYPES)) {
      expect(verified).toContain(`file ${type}`);
      expect(verified).toContain(`rekor ${type}`);
    }
  });

  it('verifies the intoto v0.0.2 entry from the statement the log kept, with no envelope from elsewhere', () => {
    const intoto = bySource('rekor').filter(
      (e: { predicateType?: string; status: string }) =>
        e.status === 'verified' && e.predicateType === PROVENANCE,
    );
    expect(intoto).toHaveLength(1);
    expect(intoto[0]).toMatchObject({ signer: { kind: 'key' }, tlog: 'inclusion-proof' });
  });

  it('finds the hashedrekord entry, and sets it aside as a signature, not an attestation', () => {
    const rejected = bySource('rekor').filter(
      (e: { status: string; code?: string }) => e.status === 'rejected',
    );
    // the provenance dsse entry has no envelope in this folder: it is named as such
    expect(rejected.map((e: { code: string }) => e.code).sort()).toEqual([
      'EVIDENCE_CONTENT_MISSING',
      'EVIDENCE_NOT_ATTESTATION',
    ]);
    expect(found.outcome).toBe('allow');
  });
});

describe('agreement with cosign, both ways, on the bundle and tampered copies', () => {
  type Verdict = { ok: boolean; why: string };
  const rows: Array<{ case: string; cosign: Verdict; gate: Verdict }> = [];
  // where the gate refuses and cosign accepts, the reason it is the stricter one
  const STRICTER: Record<string, string> = {};

  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    return bytes.toString('base64');
  };
  const editJson = (b64: string, edit: (doc: any) => void) => {
    const doc = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
    edit(doc);
    return Buffer.from(JSON.stringify(doc)).toString('base64');
  };
  const CASES: Array<[string, (b: any) => void, { key?: string; artifact?: string }?]> = [
    ['as cosign wrote it', () => {}],
    [
      'payload',
      (b) =>
        (b.dsseEnvelope.payload = editJson(b.dsseEnvelope.payload, (s) => (s.predicate.extra = 1))),
    ],
    [
      'signature',
      (b) => (b.dsseEnvelope.signatures[0].sig = flip(b.dsseEnvelope.signatures[0].sig)),
    ],
    [
      'subject',
      (b) =>
        (b.dsseEnvelope.payload = editJson(b.dsseEnvelope.payload, (s) => {
          s.subject[0].digest.sha256 = createHash('sha256').update('another').digest('hex');
        })),
    ],
    [
      'SET',
      (b) => {
        const p = b.verificationMaterial.tlogEntries[0].inclusionPromise;
        p.signedEntryTimestamp = flip(p.signedEntryTimestamp);
      },
    ],
    [
      'integrated time',
      (b) => {
        const e = b.verificationMaterial.tlogEntries[0];
        e.integratedTime = String(Number(e.integratedTime) - 3600);
      },
    ],
    [
      'inclusion proof',
      (b) => {
        const p = b.verificationMaterial.tlogEntries[0].inclusionProof;
        if (p.hashes?.length) p.hashes[0] = flip(p.hashes[0]);
        else p.logIndex = String(Number(p.logIndex) + 1);
      },
    ],
    [
      'root hash',
      (b) => {
        const p = b.verificationMaterial.tlogEntries[0].inclusionProof;
        p.rootHash = flip(p.rootHash);
      },
    ],
    [
      'body',
      (b) => {
        const e = b.verificationMaterial.tlogEntries[0];
        e.canonicalizedBody = editJson(e.canonicalizedBody, (body) => (body.apiVersion = '0.0.2'));
      },
    ],
    ['wrong key', () => {}, { key: 'other.pub' }],
    ['wrong artifact', () => {}, { artifact: 'other.txt' }],
  ];

  beforeAll(async () => {
    const other = peer(COSIGN);
    await other.run(['generate-key-pair'], ENV);
    writeFileSync(
      path.join(cosign.dir, 'other.pub'),
      readFileSync(path.join(other.dir, 'cosign.pub')),
    );
    writeFileSync(path.join(cosign.dir, 'other.txt'), 'another artifact\n');
    mkdirSync(path.join(cosign.dir, 'cases'));
    const original = readFileSync(
      path.join(cosign.dir, 'evidence', 'provenance.sigstore.json'),
      'utf8',
    );
    for (const [name, tamper, o = {}] of CASES) {
      const bundle = JSON.parse(original);
      tamper(bundle);
      const file = path.join('cases', `${name.replace(/ /g, '-')}.sigstore.json`);
      writeFileSync(path.join(cosign.dir, file), JSON.stringify(bundle));
      const key = o.key ?? 'cosign.pub';
      const artifact = o.artifact ?? 'artifact.txt';
      const cosignVerdict = await cosign
        .run(verifyBlobAttestationArgs({ key, bundle: file, type: PROVENANCE, artifact }))
        .then(
          () => ({ ok: true, why: 'Verified OK' }),
          (e: Error) => ({ ok: false, why: lastLine(e.message) }),
        );
      const gateVerdict = await promisify(execFile)(
        process.execPath,
        [
          CLI,
          'verify-bundle',
          '--bundle',
          file,
          '--key',
          key,
          '--trusted-root',
          'trusted_root.json',
          artifact,
        ],
        { cwd: cosign.dir },
      ).then(
        () => ({ ok: true, why: 'verified' }),
        (e: { stdout?: string; stderr?: string }) => ({
          ok: false,
          why: lastLine(`${e.stderr ?? ''}${e.stdout ?? ''}`),
        }),
      );
      rows.push({ case: name, cosign: cosignVerdict, gate: gateVerdict });
    }
    const pad = (t: string, n: number) => t.slice(0, n).padEnd(n);
    const table = [
      `${pad('case', 18)} | ${pad('cosign v3.1.2', 64)} | gate`,
      ...rows.map(
        (r) =>
          `${pad(r.case, 18)} | ${pad(`${r.cosign.ok ? 'accepts' : 'refuses'}: ${r.cosign.why}`, 64)} | ${r.gate.ok ? 'accepts' : 'refuses'}: ${r.gate.why.slice(0, 90)}`,
      ),
    ].join('\n');
    console.log(`agreement with cosign on a real Rekor bundle:\n${table}`);
  }, 180_000);

  it('both accept the bundle as cosign wrote it', () => {
    expect(rows[0]).toMatchObject({ cosign: { ok: true }, gate: { ok: true } });
  });

  it('both refuse every tampered copy, or the gate is the stricter one for a stated reason', () => {
    for (const r of rows.slice(1)) {
      expect([r.case, r.gate.ok]).toEqual([r.case, false]);
      if (r.cosign.ok) expect([r.case, STRICTER[r.case]]).toEqual([r.case, expect.any(String)]);
    }
    // the gate never accepts what cosign refuses
    expect(rows.filter((r) => r.gate.ok && !r.cosign.ok)).toEqual([]);
  });
});

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const error = lines.find((l) => /^Error:|"code"|error/i.test(l)) ?? lines[lines.length - 1] ?? '';
  return error.replace(/\s+/g, ' ').trim();
}

describe('a private Rekor whose checkpoints name another host than its URL', () => {
  const HOST = 'rekor.internal.example';
  let own: RealRekor;
  let dir: Peer;

  beforeAll(async () => {
    // rekor's metrics port is fixed: one stack at a time
    await rekor.stop();
    own = await startRealRekor({ hostname: HOST });
    rekor = own;
    dir = peer(COSIGN);
    mkdirSync(path.join(dir.dir, 'evidence'));
    for (const f of ['cosign.key', 'cosign.pub', 'artifact.txt', 'provenance.json'])
      writeFileSync(path.join(dir.dir, f), readFileSync(path.join(cosign.dir, f)));
    await dir.run(
      attestBlobArgs({
        predicate: 'provenance.json',
        type: PROVENANCE,
        bundle: 'evidence/provenance.sigstore.json',
        artifact: 'artifact.txt',
        rekorUrl: own.url,
      }),
      ENV,
    );
    writeFileSync(path.join(dir.dir, 'rekor.pub'), own.publicKeyPem);
    await dir.run(trustedRootArgs(own.url));
    cosign = dir;
  }, 180_000);

  it('cosign and the gate both accept its entries: the log key is trusted, the name recorded', async () => {
    const { stderr } = await dir.run(
      verifyBlobAttestationArgs({ bundle: 'evidence/provenance.sigstore.json', type: PROVENANCE }),
    );
    expect(stderr).toMatch(/Verified OK/);
    const { code, decision } = await gateCheck(
      base(`{ bundles: [evidence], rekor: { url: "${own.url}" } }`),
    );
    expect(decision.outcome).toBe('allow');
    expect(code).toBe(0);
    expect(decision.evidence).toHaveLength(2);
    for (const e of decision.evidence) {
      expect(e).toMatchObject({
        status: 'verified',
        tlog: 'inclusion-proof',
        checkpointOrigin: `${HOST} - ${own.treeId}`,
      });
    }
  });

  it('a checkpoint signed by another key is still refused, whatever name it gives', async () => {
    const bundle = JSON.parse(
      readFileSync(path.join(dir.dir, 'evidence', 'provenance.sigstore.json'), 'utf8'),
    );
    const entry = bundle.verificationMaterial.tlogEntries[0];
    const envelope: string = entry.inclusionProof.checkpoint.envelope;
    const [note, sigs] = envelope.split('\n\n');
    // the same note signed by a key of our own, under the log's name and key hint
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const line = sigs!.split('\n')[0]!;
    const [, name, b64] = /^\u2014 (\S+) (\S+)$/.exec(line)!;
    const hint = Buffer.from(b64!, 'base64').subarray(0, 4);
    const forged = Buffer.concat([hint, sign('sha256', Buffer.from(`${note}\n`), privateKey)]);
    entry.inclusionProof.checkpoint.envelope = `${note}\n\n\u2014 ${name} ${forged.toString('base64')}\n`;
    mkdirSync(path.join(dir.dir, 'forged'), { recursive: true });
    writeFileSync(path.join(dir.dir, 'forged', 'provenance.sigstore.json'), JSON.stringify(bundle));
    const { code, decision } = await gateCheck(base('{ bundles: [forged] }'));
    expect(decision.outcome).toBe('deny');
    expect(code).toBe(1);
    expect(decision.evidence).toMatchObject([
      { status: 'rejected', code: 'TLOG_INVALID', message: expect.stringMatching(/checkpoint/) },
    ]);
  });
});

describe('faults of the real log: the gate cannot decide, says why, within its deadline', () => {
  const DEADLINE_MS = 2500;
  const withDeadline = () =>
    `deadlineMs: ${DEADLINE_MS}\n` + base(`{ rekor: { url: "${rekor.url}" } }`);

  async function timed(name: string) {
    const start = Date.now();
    const r = await gateCheck(withDeadline());
    const ms = Date.now() - start;
    reportFault(`check: real rekor, ${name}`, r.decision.outcome, r.decision.error?.code, ms);
    return { ...r, ms };
  }

  it('its signer stopped: a write hangs, and the gate finds nothing it could allow on', async () => {
    rekor.signal('trillian-signer', 'SIGSTOP');
    try {
      writeFileSync(
        path.join(cosign.dir, 'late.txt'),
        'an artifact logged while the signer is down\n',
      );
      const late = createHash('sha256')
        .update('an artifact logged while the signer is down\n')
        .digest('hex');
      const write = await promisify(execFile)(
        COSIGN,
        attestBlobArgs({
          predicate: 'provenance.json',
          type: PROVENANCE,
          bundle: 'late.sigstore.json',
          artifact: 'late.txt',
          rekorUrl: rekor.url,
        }),
        { cwd: cosign.dir, timeout: 4000, env: { ...process.env, HOME: cosign.dir, ...ENV } },
      ).then(
        () => 'written',
        () => 'did not finish',
      );
      expect(write).toBe('did not finish');
      writeFileSync(
        path.join(cosign.dir, 'gate.yaml'),
        `deadlineMs: ${DEADLINE_MS}\n` + base(`{ rekor: { url: "${rekor.url}" } }`),
      );
      const start = Date.now();
      const { code, decision } = await promisify(execFile)(
        process.execPath,
        [
          CLI,
          'check',
          '--config',
          'gate.yaml',
          '--subject',
          `sha256:${late}`,
          '--env',
          'dev',
          '--format',
          'json',
        ],
        { cwd: cosign.dir },
      ).then(
        (r) => ({ code: 0, decision: JSON.parse(r.stdout) }),
        (e: { code: number; stdout: string }) => ({ code: e.code, decision: JSON.parse(e.stdout) }),
      );
      const ms = Date.now() - start;
      reportFault(
        'check: real rekor, its signer stopped',
        decision.outcome,
        decision.error?.code,
        ms,
      );
      expect(decision.outcome).not.toBe('allow');
      expect(code).not.toBe(0);
      expect(ms).toBeLessThan(DEADLINE_MS + 2000);
    } finally {
      rekor.signal('trillian-signer', 'SIGCONT');
    }
  });

  it('its database hung (MariaDB stopped with SIGSTOP)', async () => {
    rekor.signal('mariadb', 'SIGSTOP');
    try {
      const { code, decision, ms } = await timed('its database hung');
      expect(code).toBe(2);
      expect(decision.outcome).toBe('error');
      expect(decision.error.code).toMatch(/^SOURCE_(TIMEOUT|BAD_RESPONSE|UNREACHABLE)$/);
      expect(decision.error.message).toContain(rekor.url.replace('http://', ''));
      expect(ms).toBeLessThan(DEADLINE_MS + 2000);
    } finally {
      rekor.signal('mariadb', 'SIGCONT');
    }
  });

  it('its database stopped (MariaDB exited): the search index is gone, the gate says so', async () => {
    rekor.signal('mariadb', 'SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    const { code, decision, ms } = await timed('its database stopped');
    expect(code).toBe(2);
    expect(decision.outcome).toBe('error');
    expect(decision.error.code).toMatch(/^SOURCE_(BAD_RESPONSE|UNREACHABLE|TIMEOUT)$/);
    expect(decision.error.message).toContain(rekor.url.replace('http://', ''));
    expect(ms).toBeLessThan(DEADLINE_MS + 2000);
  });

  it('rekor-server stopped', async () => {
    rekor.signal('rekor', 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const { code, decision, ms } = await timed('rekor-server stopped');
    expect(code).toBe(2);
    expect(decision.outcome).toBe('error');
    expect(decision.error.code).toBe('SOURCE_UNREACHABLE');
    expect(ms).toBeLessThan(DEADLINE_MS + 2000);
  });
});
