import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Decision } from '../decision.js';
import type { CheckRequest } from '../gate.js';
import { decide, deny, nameOf, notPinned, releaseSet } from './admission-answer.js';
import {
  admissionDeadlineMs,
  parseReview,
  type AdmissionRequest,
  type AdmissionResult,
} from './admission-review.js';
import { ENVIRONMENT_SCHEMA } from './decisions.js';
import { ADMISSION_MAX_DEPTH } from './json-limits.js';
import { clientGone } from './load.js';
import { imagesOf, parsePinnedImage, podSpecsOf, type ContainerImage } from './pod-specs.js';
import { isPlainObject } from '../util/input.js';

/**
 * POST /v1/admission/NAME: a Kubernetes validating admission webhook (admission.k8s.io/v1). Every
 * image of every pod spec the object carries must be pinned by digest; all of them are then
 * decided together as one release set, each named after its repository.
 *
 * The environment is the last path segment (Kubernetes allows no query in a webhook's
 * service.path or url), else `?env=NAME`, else the server's --env-default. A review carries no
 * namespace labels, so the convention is one webhook entry per environment, selecting namespaces
 * by a label (namespaceSelector) and naming that environment in its path (docs/kubernetes.md).
 * Labels on the object itself are ignored on purpose: whoever deploys sets those and could pick a
 * laxer environment.
 *
 * Every review the server could parse is answered with an AdmissionReview, a denial when anything
 * is wrong (allowed: false, with the reason), never with an HTTP error, which failurePolicy:
 * Ignore would turn into an allow.
 */

/** An UPDATE carries object and oldObject, each up to etcd's 1.5 MiB. */
export const ADMISSION_BODY_LIMIT = 4 * 1024 * 1024;

type Check = (req: CheckRequest, left?: AbortSignal) => Promise<Decision>;

export interface AdmissionOptions {
  /** the environment when the url names none */
  defaultEnvironment?: string;
  /** kinds that may carry no pod spec (ConfigMap, ...); their images are still checked if any */
  exemptKinds?: readonly string[];
  /** the longest a decision may take, capped further below the webhook's own timeout */
  deadlineMs?: number;
  bodyLimit?: number;
}

interface Route {
  Params: { env?: string };
  Querystring: { env?: unknown; timeout?: unknown };
}

const NO_ENVIRONMENT =
  'the gate webhook names no environment: end its path with /NAME or start the server with --env-default';

export function registerAdmissionRoute(
  app: FastifyInstance,
  check: Check,
  opts: AdmissionOptions = {},
): void {
  const handler = async (request: FastifyRequest<Route>, reply: FastifyReply) => {
    const parsed = parseReview(request.body);
    const left = clientGone(request, reply);
    const response = parsed.ok
      ? await admit(parsed.request, request, (r) => check(r, left), opts)
      : deny(400, parsed.message);
    const uid = parsed.ok ? parsed.request.uid : parsed.uid;
    return {
      apiVersion: parsed.apiVersion,
      kind: 'AdmissionReview',
      response: { uid, ...response },
    };
  };
  const options = {
    bodyLimit: opts.bodyLimit ?? ADMISSION_BODY_LIMIT,
    config: { maxJsonDepth: ADMISSION_MAX_DEPTH },
  };
  app.post<Route>('/v1/admission', options, handler);
  app.post<Route>('/v1/admission/:env', options, handler);
}

async function admit(
  req: AdmissionRequest,
  http: FastifyRequest<Route>,
  check: Check,
  opts: AdmissionOptions,
): Promise<AdmissionResult> {
  const env = environmentOf(http, opts.defaultEnvironment);
  if (env.invalid) return deny(400, env.invalid);
  const op = deploysSomething(req);
  if (op !== 'deploys') return op === 'nothing' ? { allowed: true } : deny(400, op.unknown);
  const found = findImages(req, opts.exemptKinds ?? []);
  if ('denied' in found) return found.denied;
  if (found.images.length === 0) return { allowed: true };
  const unpinned = found.images.filter((i) => parsePinnedImage(i.image) === null);
  if (unpinned.length > 0) return deny(403, unpinned.map(notPinned).join('; '));
  if (env.name === undefined) return deny(500, NO_ENVIRONMENT);
  const breakGlass = breakGlassAnnotation(req.object);
  if ('invalid' in breakGlass) return deny(400, breakGlass.invalid);
  const context = {
    admission: {
      namespace: req.namespace,
      kind: req.kind.kind,
      name: nameOf(req),
      operation: req.operation,
      uid: req.uid,
    },
  };
  const deadlineMs = admissionDeadlineMs(http.query.timeout, opts.deadlineMs);
  const checkRequest: CheckRequest = {
    subjects: releaseSet(found.images),
    environment: env.name,
    context,
    deadlineMs,
    ...(breakGlass.id ? { breakGlassId: breakGlass.id } : {}),
  };
  return decide(check, checkRequest, http.log);
}

/** The annotation that names a stored break-glass request (POST /v1/break-glass) to admit by. */
export const BREAK_GLASS_ANNOTATION = 'gate.dev/break-glass';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The break-glass request the object names: on its own metadata (a Pod, a ReplicaSet made from
 * an annotated template carries it on the template) or on a pod template's metadata (a
 * Deployment's spec.template, which its ReplicaSets and Pods inherit). Every place that names one
 * must name the same; the request itself is checked by the gate like any other use of it.
 */
export function breakGlassAnnotation(object: unknown): { id?: string } | { invalid: string } {
  const found = new Set<unknown>();
  const stack: unknown[] = [object];
  while (stack.length > 0) {
    const at = stack.pop();
    if (Array.isArray(at)) stack.push(...at);
    else if (isPlainObject(at)) {
      const meta = at.metadata;
      const annotations = isPlainObject(meta) ? meta.annotations : undefined;
      if (isPlainObject(annotations) && BREAK_GLASS_ANNOTATION in annotations)
        found.add(annotations[BREAK_GLASS_ANNOTATION]);
      for (const v of Object.values(at)) if (typeof v === 'object' && v !== null) stack.push(v);
    }
  }
  if (found.size === 0) return {};
  if (found.size > 1)
    return {
      invalid: `the object names more than one break-glass request in ${BREAK_GLASS_ANNOTATION}`,
    };
  const [id] = [...found];
  if (typeof id !== 'string' || !REQUEST_ID.test(id))
    return {
      invalid: `${BREAK_GLASS_ANNOTATION} must be a break-glass request id (8 to 128 of A-Z a-z 0-9 . _ : -), found ${JSON.stringify(id).slice(0, 80)}`,
    };
  return { id };
}

function environmentOf(
  http: FastifyRequest<Route>,
  fallback: string | undefined,
): { name?: string; invalid?: string } {
  const fromPath = http.params.env;
  const fromQuery = http.query.env;
  if (fromQuery !== undefined && typeof fromQuery !== 'string') {
    return { invalid: 'the webhook url names ?env= more than once' };
  }
  if (fromPath !== undefined && fromQuery !== undefined && fromPath !== fromQuery) {
    return { invalid: `the webhook url names two environments: ${fromPath} and ${fromQuery}` };
  }
  const name = fromPath ?? fromQuery;
  if (name === undefined) return fallback === undefined ? {} : { name: fallback };
  return validEnvironment(name)
    ? { name }
    : { invalid: `the webhook's environment ${JSON.stringify(name)} is not a valid name` };
}

const ENV_PATTERN = new RegExp(ENVIRONMENT_SCHEMA.pattern);
const validEnvironment = (s: string) =>
  s.length <= ENVIRONMENT_SCHEMA.maxLength && ENV_PATTERN.test(s);

/**
 * Only creating or changing an object deploys images. Deletes and connects (exec, attach) do
 * not, nor do status and scale updates, which re-send the pod spec unchanged; `kubectl debug`
 * adds ephemeral containers, which run. An operation the webhook does not know is denied.
 */
function deploysSomething(req: AdmissionRequest): 'deploys' | 'nothing' | { unknown: string } {
  if (req.operation === 'DELETE' || req.operation === 'CONNECT') return 'nothing';
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') {
    return { unknown: `unknown admission operation ${JSON.stringify(req.operation.slice(0, 40))}` };
  }
  const sub = req.subResource;
  return sub === undefined || sub === '' || sub === 'ephemeralcontainers' ? 'deploys' : 'nothing';
}

/** The images of every pod spec; an object with none is denied unless its kind is exempt. */
function findImages(
  req: AdmissionRequest,
  exemptKinds: readonly string[],
): { images: ContainerImage[] } | { denied: AdmissionResult } {
  const specs = podSpecsOf(req.object);
  const images = specs.flatMap((s) => imagesOf(s.spec));
  if (images.length > 0 || exemptKinds.includes(req.kind.kind)) return { images };
  const what = specs.length === 0 ? 'carries no pod spec' : 'has no containers';
  const message = `${req.kind.kind} ${nameOf(req)} ${what}: the gate cannot see its images; if it runs none, list its kind in admission.exemptKinds`;
  return { denied: deny(403, message) };
}
