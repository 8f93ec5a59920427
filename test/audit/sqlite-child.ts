import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createSqliteLedger } from '../../src/audit/sqlite.js';
import type { Decision } from '../../src/decision.js';

/**
 * Realistic decisions for the SQLite ledger's tests and benchmark (the shape and size of what the
 * gate records: ~4 KB decision, ~7 KB policy input), and, run as a script, the child processes of
 * the concurrency and crash tests:
 *
 *   node --import tsx test/audit/sqlite-child.ts append DB COUNT TAG [INFLIGHT]
 *     appends COUNT decisions with ids TAG-0..TAG-(COUNT-1), INFLIGHT at a time (default: one to
 *     four), then prints "done START END" (epoch ms of the first and last append)
 *   node --import tsx test/audit/sqlite-child.ts override DB COUNT TAG
 *     records an override of each of req-0..req-(COUNT-1), one after another, and prints
 *     "req-J ok" or "req-J CODE" for each (the break-glass race between processes)
 *   node --import tsx test/audit/sqlite-child.ts gate DB POLICY EVIDENCE_DIR COUNT TAG
 *     runs the real gate (createGate, the SQLite ledger, the compiled POLICY, file evidence),
 *     CONCURRENCY decisions in flight, and prints each decision id only once gate.check resolved
 *     with it recorded (acknowledged)
 */

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const ENVS = ['dev', 'staging', 'production'];
const REPOS = ['api', 'web', 'worker', 'billing', 'search'];

function signer(repo: string, workflow: string) {
  const ref = `https://github.com/acme/${repo}/.github/workflows/${workflow}.yml@refs/heads/main`;
  return {
    kind: 'keyless',
    identity: ref,
    issuer: 'https://token.actions.githubusercontent.com',
    extensions: {
      issuer: 'https://token.actions.githubusercontent.com',
      runnerEnvironment: 'github-hosted',
      sourceRepositoryURI: `https://github.com/acme/${repo}`,
      sourceRepositoryRef: 'refs/heads/main',
      sourceRepositoryDigest: sha256(repo).slice(0, 40),
      buildConfigURI: ref,
      buildSignerURI: ref,
      buildTrigger: 'push',
    },
  };
}

const PREDICATES = [
  ['https://slsa.dev/provenance/v1', 'release'],
  ['https://in-toto.io/attestation/test-result/v0.1', 'ci'],
  ['https://in-toto.io/attestation/vulns/v0.2', 'scan'],
] as const;

export interface Sample {
  id?: string;
  /** which artifact: decisions about the same artifact share a subject */
  artifact?: number;
  time?: Date;
  override?: { requestId: string; requester: string };
}

/** The i-th sample decision and its policy input. */
export function sampleDecision(i: number, s: Sample = {}): { decision: Decision; input: unknown } {
  const artifact = s.artifact ?? i;
  const repo = REPOS[artifact % REPOS.length]!;
  const hex = sha256(`artifact ${artifact}`);
  const subject = `sha256:${hex}`;
  const environment = ENVS[i % ENVS.length]!;
  const time = (s.time ?? new Date(Date.UTC(2026, 0, 1) + i * 1000)).toISOString();
  const denied = s.override !== undefined || i % 4 === 1;
  const violations = denied
    ? [
        {
          id: 'review.present',
          subject,
          message: `no code-review attestation for acme-${repo}`,
          remediation:
            'attach a code-review attestation (https://gate.dev/attestation/code-review/v1) signed by a trusted review attestor',
          attestations: [],
        },
      ]
    : [];
  const evidence = PREDICATES.map(([predicateType, wf], k) => ({
    id: sha256(`${artifact} evidence ${k}`),
    source: `file:/srv/evidence/${repo}/${wf}.sigstore.json`,
    status: 'verified' as const,
    predicateType,
    signer: signer(repo, wf) as unknown as Decision['evidence'][number]['signer'],
    logIndex: String(2_000_000 + artifact * 3 + k),
  }));
  const subjects = [
    { digest: { sha256: hex }, name: `acme-${repo}`, version: `1.${artifact % 50}.0` },
  ];
  const input = {
    subjects,
    environment,
    effectiveTime: time,
    attestations: PREDICATES.map(([predicateType, wf], k) => ({
      id: evidence[k]!.id,
      source: evidence[k]!.source,
      subject: { name: `acme-${repo}.tar.gz`, digest: { sha256: hex } },
      predicateType,
      predicate: {
        buildDefinition: {
          buildType: 'https://actions.github.io/buildtypes/workflow/v1',
          externalParameters: {
            workflow: {
              ref: 'refs/heads/main',
              repository: `https://github.com/acme/${repo}`,
              path: `.github/workflows/${wf}.yml`,
            },
          },
          resolvedDependencies: [
            {
              uri: `git+https://github.com/acme/${repo}@refs/heads/main`,
              digest: { gitCommit: sha256(`${repo} ${artifact}`).slice(0, 40) },
            },
          ],
        },
        runDetails: {
          builder: { id: 'https://github.com/actions/runner/github-hosted' },
          metadata: {
            invocationId: `https://github.com/acme/${repo}/actions/runs/${8_800_000_000 + artifact}/attempts/1`,
            startedOn: time,
            finishedOn: time,
          },
        },
      },
      signer: evidence[k]!.signer,
      logEntries: [
        { logIndex: evidence[k]!.logIndex, integratedTime: time, logId: sha256('rekor') },
      ],
      timestamps: [{ source: 'tlog', time }],
    })),
    rejected: [],
    context: { pipeline: `https://ci.acme.example/${repo}/${i}` },
    breakGlass: [],
  };
  const decision: Decision = {
    id: s.id ?? `dec-${String(i).padStart(8, '0')}`,
    time,
    gateVersion: '0.1.0',
    environment,
    subjects,
    mode: 'enforce',
    outcome: s.override ? 'override' : denied ? 'deny' : 'allow',
    allow: !denied || s.override !== undefined,
    violations,
    warnings: [],
    rules: [
      'input.subjects',
      'provenance.present',
      'provenance.signer',
      'review.present',
      'tests.passed',
      'vulnerabilities.severity',
    ],
    evidence,
    sourceFailures: [],
    ...(s.override
      ? {
          override: {
            requestId: s.override.requestId,
            requester: s.override.requester,
            justification: 'checkout is down, the fix must ship now',
            ticket: 'INC-4711',
            expiresAt: time,
            signers: [s.override.requester, 'lead@acme.example'],
            overridden: ['review.present'],
          },
        }
      : {}),
    digests: {
      policy: sha256('policy'),
      trustRoot: sha256('root'),
      config: sha256('config'),
      input: sha256(time + i),
    },
  };
  return { decision, input };
}

async function appendChild(db: string, count: number, tag: string, inflight?: number) {
  const samples = Array.from({ length: count }, (_, j) =>
    sampleDecision(j, { id: `${tag}-${j}`, artifact: j % 7 }),
  );
  const ledger = createSqliteLedger({ path: db, busyTimeoutMs: 30_000 });
  const start = Date.now();
  let i = 0;
  while (i < count) {
    // by default one to four appends at a time: single transactions and group commits both race
    // the sibling process
    const n = Math.min(count - i, inflight ?? 1 + (i % 4));
    await Promise.all(
      samples.slice(i, i + n).map(({ decision }, k) => ledger.append(decision, { j: i + k })),
    );
    i += n;
  }
  const end = Date.now();
  await ledger.close();
  process.stdout.write(`done ${start} ${end}\n`);
}

/** Overrides of req-0..req-(COUNT-1), one after another, racing a sibling doing the same. */
async function overrideChild(db: string, count: number, tag: string) {
  const ledger = createSqliteLedger({ path: db, busyTimeoutMs: 30_000 });
  for (let j = 0; j < count; j++) {
    const override = { requestId: `req-${j}`, requester: 'oncall@acme.example' };
    const { decision } = sampleDecision(j, { id: `${tag}-${j}`, override });
    const result = await ledger.append(decision, {}).then(
      () => 'ok',
      (err: { code?: string }) => err.code ?? 'unknown',
    );
    process.stdout.write(`req-${j} ${result}\n`);
  }
  await ledger.close();
}

async function gateChild(
  db: string,
  policyFile: string,
  evidenceDir: string,
  count: number,
  tag: string,
) {
  const { createFileSource } = await import('../../src/collect/files.js');
  const { normalise } = await import('../../src/config.js');
  const { loadCompiledPolicy } = await import('../../src/evaluate/policy.js');
  const { createGate } = await import('../../src/gate.js');
  const policy = await loadCompiledPolicy(policyFile);
  const ledger = createSqliteLedger({ path: db, busyTimeoutMs: 30_000 });
  const config = normalise({ ledger: { path: db } }, process.cwd(), sha256('crash-test'));
  let n = 0;
  const gate = await createGate(config, {
    policy,
    ledger,
    newId: () => `${tag}-${n++}`,
    sources: () => [createFileSource({ paths: [evidenceDir] })],
  });
  const SUBJECT = process.env.GATE_TEST_SUBJECT!;
  const CONCURRENCY = 16;
  let next = 0;
  async function worker() {
    while (next < count) {
      next++;
      const d = await gate.check({
        subjects: [{ digest: { algorithm: 'sha512', hex: SUBJECT } }],
        environment: 'production',
      });
      if (d.outcome === 'error')
        process.stderr.write(`unrecorded ${d.id}: ${d.error?.code} ${d.error?.message}\n`);
      else process.stdout.write(`${d.id}\n`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await gate.close();
  process.stdout.write('done\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mode, ...args] = process.argv.slice(2);
  const run =
    mode === 'append'
      ? appendChild(args[0]!, Number(args[1]), args[2]!, args[3] ? Number(args[3]) : undefined)
      : mode === 'gate'
        ? gateChild(args[0]!, args[1]!, args[2]!, Number(args[3]), args[4]!)
        : mode === 'override'
          ? overrideChild(args[0]!, Number(args[1]), args[2]!)
          : Promise.reject(new Error(`unknown mode ${mode}`));
  run.catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
