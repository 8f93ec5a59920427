import type { Decision, Outcome } from '../../src/decision.js';
import type { CompiledPolicy } from '../../src/evaluate/policy.js';
import type { CheckRequest, Gate } from '../../src/gate.js';
import type { Trust } from '../../src/verify/trust.js';

/**
 * A stand-in Gate for the tests of the HTTP adapter alone (status codes, schemas, admission
 * parsing, auth): it answers what the test tells it to and records what it was asked. The gate
 * itself is tested with real policies and evidence in test/gate/; real-gate tests here use
 * real-gate.ts.
 */
export interface FakeGate extends Gate {
  calls: CheckRequest[];
  closed: number;
}

export type Answer = (req: CheckRequest) => Decision | Promise<Decision>;

export function fakeGate(answer: Answer = (req) => decisionFor(req, 'allow')): FakeGate {
  const gate: FakeGate = {
    calls: [],
    closed: 0,
    async check(req) {
      gate.calls.push(req);
      return answer(req);
    },
    async close() {
      gate.closed++;
    },
    summarize(decision) {
      // what a gate with a summary key gives back: a bundle over the decision (unsigned here)
      const payload = Buffer.from(JSON.stringify({ decisionId: decision.id })).toString('base64');
      return {
        mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        verificationMaterial: { publicKey: { hint: 'fake' } },
        dsseEnvelope: { payloadType: 'application/vnd.in-toto+json', payload, signatures: [] },
      };
    },
    policy: {} as CompiledPolicy,
    trust: {} as Trust,
    outbox: undefined,
    policyData: undefined,
    ledger: undefined,
    verifyCacheStats: () => ({ hits: 0, misses: 0, entries: 0, oldestAgeMs: 0 }),
  };
  return gate;
}

let n = 0;

/** A decision as the gate would return it, for `req`, with this outcome. */
export function decisionFor(
  req: CheckRequest,
  outcome: Outcome,
  extra: Partial<Decision> = {},
): Decision {
  const deny = outcome === 'deny';
  return {
    id: `decision-${++n}`,
    time: '2026-01-01T00:00:00.000Z',
    gateVersion: 'test',
    environment: req.environment,
    subjects: req.subjects.map((s) => ({
      digest: { [s.digest.algorithm]: s.digest.hex },
      ...(s.name ? { name: s.name } : {}),
    })),
    mode: 'enforce',
    outcome,
    allow: outcome === 'allow' || outcome === 'override',
    violations: deny
      ? [
          {
            id: 'tests.passed',
            message: 'tests failed',
            remediation: 'make them pass',
            attestations: [],
          },
        ]
      : [],
    warnings: [],
    rules: ['tests.passed'],
    evidence: [],
    sourceFailures: [],
    ...(outcome === 'error'
      ? {
          error: {
            code: 'SOURCE_UNREACHABLE',
            message: 'could not look at rekor: connection refused',
          },
        }
      : {}),
    digests: { trustRoot: 't', config: 'c' },
    ...extra,
  };
}

export const DIGEST = `sha256:${'a'.repeat(64)}`;
export const OTHER = `sha256:${'b'.repeat(64)}`;
