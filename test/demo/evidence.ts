import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { KeylessIdentity } from '../support/mint.js';

/**
 * What `make demo` signs: an example artifact and the evidence a CI pipeline would attach to it,
 * shaped so that the default policy data (policies/data.json) trusts it. The identities are the
 * acme.example / github.com/acme examples that data names.
 */

export const ARTIFACT_NAME = 'acme-api-1.4.2.tar.gz';
export const REPO = 'https://github.com/acme/api';
export const REF = 'refs/heads/main';
export const COMMIT = '4c1f5a0e9b7d3e2a18f6c0b9d4e7a2f1c3b5d6e8';
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/** A GitHub Actions workflow of acme/api on main, as Fulcio would certify it. */
function workflow(file: string): KeylessIdentity {
  const uri = `${REPO}/.github/workflows/${file}@${REF}`;
  return {
    san: uri,
    issuer: GITHUB_ISSUER,
    extensions: {
      runnerEnvironment: 'github-hosted',
      sourceRepositoryURI: REPO,
      sourceRepositoryRef: REF,
      sourceRepositoryDigest: COMMIT,
      buildConfigURI: uri,
      buildSignerURI: uri,
      buildTrigger: 'push',
    },
  };
}

/** The trusted builder's identity (trusted_builders[0]): the release workflow, github-hosted. */
export const RELEASE_WORKFLOW = workflow('release.yml');
/** A test attestor (attestors.tests) */
export const CI_WORKFLOW = workflow('ci.yml');
/** A vulnerability scanner (attestors.vulnerabilities) */
export const SCAN_WORKFLOW = workflow('scan.yml');

/** The people of the break-glass rule, signing through the company's OIDC provider. */
const SSO_ISSUER = 'https://sso.acme.example';
export const ONCALL: KeylessIdentity = { san: 'oncall@sre.acme.example', issuer: SSO_ISSUER };
export const LEAD: KeylessIdentity = { san: 'lead@acme.example', issuer: SSO_ISSUER };

/** A small, reproducible .tar.gz holding one file (ustar, fixed mtime, gzip without a name). */
export function exampleArtifact(): Buffer {
  const content = Buffer.from('acme-api 1.4.2\nthis is the example artifact of `make demo`\n');
  const header = Buffer.alloc(512);
  const put = (offset: number, text: string) => header.write(text, offset, 'latin1');
  put(0, 'acme-api-1.4.2/VERSION');
  put(100, '0000644\0');
  put(108, '0000000\0');
  put(116, '0000000\0');
  put(124, `${content.length.toString(8).padStart(11, '0')}\0`);
  put(136, `${Math.floor(Date.UTC(2026, 10, 20) / 1000).toString(8)}\0`);
  put(148, '        ');
  put(156, '0');
  put(257, 'ustar\0' + '00');
  put(265, 'acme');
  put(297, 'acme');
  const sum = header.reduce((a, b) => a + b, 0);
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(body);
  return gzipSync(Buffer.concat([header, body, Buffer.alloc(1024)]), { level: 9 });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const statement = (hex: string, predicateType: string, predicate: object) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: ARTIFACT_NAME, digest: { sha256: hex } }],
  predicateType,
  predicate,
});

/** SLSA provenance v1 from GitHub Actions (actions/attest-build-provenance's shape). */
export function provenance(hex: string, now: Date) {
  return statement(hex, 'https://slsa.dev/provenance/v1', {
    buildDefinition: {
      buildType: 'https://actions.github.io/buildtypes/workflow/v1',
      externalParameters: {
        workflow: { ref: REF, repository: REPO, path: '.github/workflows/release.yml' },
      },
      internalParameters: { github: { event_name: 'push', runner_environment: 'github-hosted' } },
      resolvedDependencies: [{ uri: `git+${REPO}@${REF}`, digest: { gitCommit: COMMIT } }],
    },
    runDetails: {
      builder: { id: 'https://github.com/actions/runner/github-hosted' },
      metadata: {
        invocationId: `${REPO}/actions/runs/8812345678/attempts/1`,
        startedOn: new Date(now.getTime() - 10 * 60_000).toISOString(),
        finishedOn: new Date(now.getTime() - 5 * 60_000).toISOString(),
      },
    },
  });
}

/** One passing run of the ci workflow; passedTests names the unit and integration suites. */
export function testResult(hex: string) {
  const workflowFile = (name: string) => ({
    name,
    uri: `${REPO}/blob/${COMMIT}/.github/workflows/${name}.yml`,
  });
  return statement(hex, 'https://in-toto.io/attestation/test-result/v0.1', {
    result: 'PASSED',
    configuration: [workflowFile('ci')],
    url: `${REPO}/actions/runs/8812345601`,
    passedTests: ['unit', 'integration'],
    warnedTests: [],
    failedTests: [],
  });
}

/** A vulnerability scan finished now: one low finding, below every environment's threshold. */
export function vulnerabilityScan(hex: string, now: Date) {
  return statement(hex, 'https://in-toto.io/attestation/vulns/v0.2', {
    scanner: {
      uri: 'pkg:github/aquasecurity/trivy@v0.58.1',
      version: '0.58.1',
      db: { uri: 'pkg:github/aquasecurity/trivy-db', version: '2' },
      result: [
        {
          id: 'GHSA-demo-0000-0001',
          severity: [{ method: 'CVSS_V3', score: '3.1' }],
        },
      ],
    },
    metadata: {
      scanStartedOn: new Date(now.getTime() - 60_000).toISOString(),
      scanFinishedOn: now.toISOString(),
    },
  });
}
