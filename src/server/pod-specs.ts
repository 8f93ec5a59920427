import { isPlainObject } from '../util/input.js';

/**
 * Finding what a Kubernetes object would run. There is no table of kinds: a table lets every
 * kind it does not list through (an Argo Rollout, a PodTemplate, any custom resource), so the
 * whole object is searched for pod specs instead, wherever it carries them.
 */

/** The lists of a pod spec that run images; an object holding any of them is a pod spec. */
const CONTAINER_LISTS = [
  ['containers', 'container'],
  ['initContainers', 'init container'],
  ['ephemeralContainers', 'ephemeral container'],
] as const;

export interface PodSpec {
  /** where it is in the object, e.g. "spec.template.spec" */
  path: string;
  spec: Record<string, unknown>;
}

/**
 * Every pod spec in the object: `spec` of a Pod, `spec.template.spec` of a Deployment or a
 * Rollout, `template.spec` of a PodTemplate, `spec.jobTemplate.spec.template.spec` of a CronJob,
 * one per replica type of a training job, and so on. Iterative (an explicit stack), in document
 * order; the depth is already bounded by the JSON parser (json-limits.ts).
 */
export function podSpecsOf(object: unknown): PodSpec[] {
  const found: PodSpec[] = [];
  const stack: Array<{ at: unknown; path: string }> = [{ at: object, path: '' }];
  while (stack.length > 0) {
    const { at, path } = stack.pop()!;
    const children: Array<[string, unknown]> = Array.isArray(at)
      ? at.map((v, i) => [String(i), v])
      : isPlainObject(at)
        ? Object.entries(at)
        : [];
    if (isPlainObject(at) && CONTAINER_LISTS.some(([field]) => Array.isArray(at[field]))) {
      found.push({ path: path || '(the object)', spec: at });
    }
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, value] = children[i]!;
      if (typeof value === 'object' && value !== null) {
        stack.push({ at: value, path: path ? `${path}.${key}` : key });
      }
    }
  }
  return found;
}

export interface ContainerImage {
  /** e.g. "container app", "init container migrate", "ephemeral container debugger" */
  container: string;
  image: string;
}

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
