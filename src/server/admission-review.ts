import { isPlainObject } from '../input.js';

/**
 * Reading Kubernetes objects for the admission webhook: where each kind keeps its pod spec,
 * which images the pod runs, whether each is pinned by digest, and the review envelope itself.
 */

/** The parts of an admission.k8s.io/v1 AdmissionReview the webhook reads. */
export interface AdmissionRequest {
  uid: string;
  kind: { kind: string };
  operation: string;
  subResource?: string;
  namespace?: string;
  name?: string;
  object?: unknown;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request: AdmissionRequest;
}

export interface AdmissionResult {
  allowed: boolean;
  status?: { code: number; message: string };
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

/** The envelope only: the object inside is read leniently, kind by kind, below. */
export const REVIEW_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { const: 'admission.k8s.io/v1' },
    kind: { const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 128 },
        kind: { type: 'object', required: ['kind'], properties: { kind: { type: 'string' } } },
        operation: { type: 'string' },
        subResource: { type: 'string' },
        namespace: { type: 'string' },
        name: { type: 'string' },
      },
    },
  },
} as const;

/** Where the pod spec lives, by the object's kind (request.kind.kind). */
const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

export type PodSpecLookup =
  | { kind: 'found'; spec: Record<string, unknown> }
  | { kind: 'missing'; path: string }
  | { kind: 'not-a-workload' };

export function podSpecOf(kind: string, object: unknown): PodSpecLookup {
  const path = Object.hasOwn(POD_SPEC_PATHS, kind) ? POD_SPEC_PATHS[kind] : undefined;
  if (!path) return { kind: 'not-a-workload' };
  let at: unknown = object;
  for (const key of path) at = isPlainObject(at) ? at[key] : undefined;
  return isPlainObject(at)
    ? { kind: 'found', spec: at }
    : { kind: 'missing', path: path.join('.') };
}

export interface ContainerImage {
  /** e.g. "app", "init container migrate", "ephemeral container debugger" */
  container: string;
  image: string;
}

const CONTAINER_LISTS = [
  ['containers', 'container'],
  ['initContainers', 'init container'],
  ['ephemeralContainers', 'ephemeral container'],
] as const;

/** Every image the pod would run, init and ephemeral containers included. */
export function imagesOf(spec: Record<string, unknown>): ContainerImage[] {
  const out: ContainerImage[] = [];
  for (const [field, label] of CONTAINER_LISTS) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    list.forEach((c: unknown, i) => {
      const name = isPlainObject(c) && typeof c.name === 'string' ? c.name : `#${i}`;
      const image = isPlainObject(c) && typeof c.image === 'string' ? c.image : '';
      out.push({ container: `${label} ${name}`, image });
    });
  }
  return out;
}

export interface PinnedImage {
  /** the repository without tag or digest, e.g. "registry.example:5000/team/app" */
  repository: string;
  /** lowercase sha256 hex */
  hex: string;
}

/**
 * `repo[:tag]@sha256:<64 hex>`. The tag, if any, is ignored: the runtime pulls by digest, so the
 * digest is what runs and what the gate decides on. Anything else is not pinned (null).
 */
export function parsePinnedImage(image: string): PinnedImage | null {
  const m = /^([^@\s]+)@sha256:([0-9a-f]{64})$/.exec(image);
  if (!m) return null;
  const named = m[1]!;
  // A colon after the last slash starts a tag; one before it is a registry port.
  const colon = named.lastIndexOf(':');
  const repository = colon > named.lastIndexOf('/') ? named.slice(0, colon) : named;
  return repository ? { repository, hex: m[2]! } : null;
}
