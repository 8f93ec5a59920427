import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Decision } from '../decision.js';
import type { CheckRequest } from '../gate.js';
import {
  imagesOf,
  parsePinnedImage,
  podSpecOf,
  REVIEW_SCHEMA,
  type AdmissionRequest,
  type AdmissionResult,
  type AdmissionReview,
  type ContainerImage,
} from './admission-review.js';
import { ENVIRONMENT_SCHEMA } from './decisions.js';
import { toHttpError } from './errors.js';

/**
 * POST /v1/admission: a Kubernetes validating admission webhook (admission.k8s.io/v1). Every
 * image of the pod must be pinned by digest; all of them are then decided together as one
 * release set, each named after its repository.
 *
 * The environment is the webhook URL's `?env=NAME`, else the server's --env-default. A review
 * carries no namespace labels, so the convention is one webhook entry per environment in the
 * ValidatingWebhookConfiguration, selecting namespaces by their `gate.dev/environment` label
 * (namespaceSelector) and naming that environment in its URL, e.g. `.../v1/admission?env=
 * production`. Labels on the object itself are ignored on purpose: whoever deploys sets those
 * and could pick a laxer environment.
 *
 * Anything that keeps the gate from deciding is answered as a denial (allowed: false, code
 * 503), never as an HTTP error, which failurePolicy: Ignore would turn into an allow.
 */

/** An UPDATE carries object and oldObject, each up to etcd's 1.5 MiB. */
export const ADMISSION_BODY_LIMIT = 4 * 1024 * 1024;

type Check = (req: CheckRequest) => Promise<Decision>;

const NO_ENVIRONMENT =
  'the gate webhook names no environment: add ?env=NAME to its url or start the server with --env-default';

export function registerAdmissionRoute(
  app: FastifyInstance,
  check: Check,
  defaultEnvironment?: string,
  bodyLimit = ADMISSION_BODY_LIMIT,
): void {
  app.post<{ Body: AdmissionReview; Querystring: { env?: string } }>(
    '/v1/admission',
    {
      bodyLimit,
      schema: {
        body: REVIEW_SCHEMA,
        querystring: { type: 'object', properties: { env: ENVIRONMENT_SCHEMA } },
      },
    },
    async (request) => {
      const req = request.body.request;
      const env = request.query.env ?? defaultEnvironment;
      const response = await admit(req, env, check, request.log);
      return {
        apiVersion: request.body.apiVersion,
        kind: 'AdmissionReview',
        response: { uid: req.uid, ...response },
      };
    },
  );
}

async function admit(
  req: AdmissionRequest,
  env: string | undefined,
  check: Check,
  log: FastifyBaseLogger,
): Promise<AdmissionResult> {
  if (!deploysSomething(req)) return { allowed: true };
  const lookup = podSpecOf(req.kind.kind, req.object);
  if (lookup.kind === 'not-a-workload') return { allowed: true };
  if (lookup.kind === 'missing') {
    return deny(400, `${req.kind.kind} ${nameOf(req)} has no pod spec at ${lookup.path}`);
  }
  const images = imagesOf(lookup.spec);
  const unpinned = images.filter((i) => parsePinnedImage(i.image) === null);
  if (unpinned.length > 0) return deny(403, unpinned.map(notPinned).join('; '));
  if (env === undefined) return deny(500, NO_ENVIRONMENT);
  const subjects = releaseSet(images);
  if (subjects.length === 0) return { allowed: true };
  const context = {
    admission: {
      namespace: req.namespace,
      kind: req.kind.kind,
      name: nameOf(req),
      operation: req.operation,
      uid: req.uid,
    },
  };
  return decide(check, { subjects, environment: env, context }, log);
}

/**
 * Only creating or changing a workload deploys images. Status and scale updates re-send the pod
 * spec unchanged and must not be blocked; `kubectl debug` adds ephemeral containers, which run.
 */
function deploysSomething(req: AdmissionRequest): boolean {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return false;
  return (
    req.subResource === undefined ||
    req.subResource === '' ||
    req.subResource === 'ephemeralcontainers'
  );
}

async function decide(
  check: Check,
  req: CheckRequest,
  log: FastifyBaseLogger,
): Promise<AdmissionResult> {
  let decision: Decision;
  try {
    decision = await check(req);
  } catch (err) {
    // A denial, not an HTTP error (see above).
    log.error({ err }, 'admission check failed');
    const { error } = toHttpError(err).body;
    return deny(503, `the gate could not decide: ${error.code}: ${error.message}`);
  }
  const auditAnnotations = { decision: decision.id };
  if (decision.outcome === 'error') {
    const e = decision.error ?? { code: 'POLICY_EVAL_FAILED', message: 'no reason given' };
    return {
      ...deny(503, `the gate could not decide (decision ${decision.id}): ${e.code}: ${e.message}`),
      auditAnnotations,
    };
  }
  const violations = decision.violations.map((v) => `${v.id}: ${v.message}`);
  if (!decision.allow) {
    return {
      ...deny(
        403,
        `denied for ${decision.environment} (decision ${decision.id}): ${violations.join('; ')}`,
      ),
      auditAnnotations,
    };
  }
  // A dry-run allows a would-deny: kubectl shows warnings, so the deployer still sees why.
  const warnings =
    decision.outcome === 'deny'
      ? violations.map((v) => `gate dry-run would deny: ${v}`.slice(0, 256))
      : [];
  return { allowed: true, auditAnnotations, ...(warnings.length > 0 ? { warnings } : {}) };
}

/** One subject per distinct digest, named after the first repository that uses it. */
function releaseSet(images: ContainerImage[]): CheckRequest['subjects'] {
  const byHex = new Map<string, string>();
  for (const i of images) {
    const p = parsePinnedImage(i.image)!;
    if (!byHex.has(p.hex)) byHex.set(p.hex, p.repository);
  }
  return [...byHex].map(([hex, name]) => ({ digest: { algorithm: 'sha256', hex }, name }));
}

function notPinned(i: ContainerImage): string {
  const shown = i.image === '' ? 'no image' : `image ${JSON.stringify(i.image)}`;
  return `${i.container}: ${shown} is not pinned by digest (use NAME@sha256:<64 hex>)`;
}

function nameOf(req: AdmissionRequest): string {
  const meta = (req.object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)
    ?.metadata;
  const name = req.name || meta?.name || meta?.generateName;
  return typeof name === 'string' && name !== '' ? name : '(unnamed)';
}

function deny(code: number, message: string): AdmissionResult {
  return {
    allowed: false,
    status: { code, message: message.replace(/\s*\n\s*/g, ' ').slice(0, 4000) },
  };
}
