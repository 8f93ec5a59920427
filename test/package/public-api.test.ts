import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';
import * as server from '../../src/server/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { FIXTURES } from '../helpers.js';
import { mintDSSEBundle } from '../support/mint.js';
import { startLocalSigstore, type LocalSigstore } from '../support/sigstore-services.js';

/**
 * The package as a user has it: `@gate/gate` and `@gate/gate/server` by name, through the
 * exports map, from the built dist/. The surface is pinned so that nothing leaves it unnoticed.
 */
const SURFACE = [
  'keyIdOf',
  'normaliseKeyId',
  'BREAK_GLASS_PREDICATE_TYPE',
  'BUNDLE_MEDIA_TYPES',
  'DEFAULT_POLICY_PATH',
  'DEFAULT_TRUSTED_ROOT_PATH',
  'FULCIO_EXTENSIONS',
  'GateError',
  'IN_TOTO_PAYLOAD_TYPE',
  'MAX_JSONL_LIMIT',
  'PolicyError',
  'VSA_PREDICATE_TYPE',
  'VerifyError',
  'attestationOf',
  'breakGlassStatement',
  'checkIdentity',
  'checkPolicyInput',
  'compileIdentityRules',
  'createGate',
  'createJsonlLedger',
  'createReplayer',
  'isGateError',
  'loadCompiledPolicy',
  'loadConfig',
  'loadTrustedRoot',
  'matchSubject',
  'openAuditLedger',
  'openLedger',
  'openLedgerToVerify',
  'parseBundle',
  'parseCheckpoints',
  'parseDigest',
  'parseImageReference',
  'parseStatement',
  'parseSubject',
  'policyStoreFor',
  'readDecisions',
  'recordedInput',
  'refreshTrustedRootWithTUF',
  'toGateError',
  'trustFromJSON',
  'verifyAttestation',
  'verifyBundle',
  'verifyDefaults',
];

describe('the public surface', () => {
  it('is what src/index.ts exports, no more and no less', () => {
    expect(Object.keys(api).sort()).toEqual([...SURFACE].sort());
  });

  it('names a key as the gate reports it, from the key or from the hex form of its id', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const digest = createHash('sha256')
      .update(publicKey.export({ format: 'der', type: 'spki' }))
      .digest();
    expect(api.keyIdOf(publicKey)).toBe(digest.toString('base64'));
    expect(api.normaliseKeyId(digest.toString('hex'))).toBe(api.keyIdOf(publicKey));
  });

  it('serves the HTTP front end from @gate/gate/server', () => {
    expect(Object.keys(server).sort()).toEqual(['closeGracefully', 'createServer']);
  });
});

describe('a user of the package', () => {
  let svc: LocalSigstore;
  let dir: string;
  const hex = createHash('sha256').update('a user artifact').digest('hex');

  beforeAll(async () => {
    svc = await startLocalSigstore();
    dir = mkdtempSync(path.join(tmpdir(), 'gate-user-'));
    // installed as a dependency would be: node_modules/@gate/gate is the package itself
    mkdirSync(path.join(dir, 'node_modules', '@gate'), { recursive: true });
    symlinkSync(packageRoot, path.join(dir, 'node_modules', '@gate', 'gate'), 'dir');
    mkdirSync(path.join(dir, 'attestations'));
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'app', digest: { sha256: hex } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: { buildDefinition: { buildType: 'https://example.com/build/v1' } },
    };
    const m = await mintDSSEBundle(svc, { statement, version: '0.3', signer: 'keyless' });
    writeFileSync(path.join(dir, 'attestations', 'app.sigstore.json'), JSON.stringify(m.bundle));
    writeFileSync(path.join(dir, 'trusted_root.json'), JSON.stringify(svc.trustedRoot));
    writeFileSync(
      path.join(dir, 'gate.yaml'),
      [
        'trustedRoot: trusted_root.json',
        'sources:',
        '  bundles: [attestations]',
        'policy:',
        `  path: ${path.join(FIXTURES, 'policies', 'requires-provenance')}`,
        'ledger:',
        '  path: .gate/ledger.db',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(dir, 'decide.mjs'),
      [
        "import { createGate, loadConfig } from '@gate/gate';",
        "const gate = await createGate(loadConfig('gate.yaml'));",
        'const decision = await gate.check({',
        `  subjects: [{ digest: { algorithm: 'sha256', hex: '${hex}' } }],`,
        "  environment: 'dev',",
        '});',
        'await gate.close();',
        'console.log(JSON.stringify(decision));',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => svc.close());

  it('decides from the configured bundle folder with createGate(loadConfig(file)) alone', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['decide.mjs'], { cwd: dir });
    const decision = JSON.parse(stdout);
    expect(decision.outcome).toBe('allow');
    expect(decision.evidence).toEqual([
      expect.objectContaining({
        status: 'verified',
        predicateType: 'https://slsa.dev/provenance/v1',
        source: `file:${path.join(dir, 'attestations', 'app.sigstore.json')}`,
      }),
    ]);
  }, 60_000);
});
