import type { FastifyBaseLogger } from 'fastify';
import type { Decision } from '../decision.js';
import type { CheckRequest } from '../gate.js';
import { parseImageReference, type ImageRef, type Subject } from '../index.js';
import type { AdmissionRequest, AdmissionResult } from './admission-review.js';
import { toHttpError } from './errors.js';
import { parsePinnedImage, type ContainerImage } from './pod-specs.js';

/** Turning the gate's decision (or its failure) into the admission response, and the wording. */

type Check = (req: CheckRequest) => Promise<Decision>;

export async function decide(
  check: Check,
  req: CheckRequest,
  log: FastifyBaseLogger,
): Promise<AdmissionResult> {
  let decision: Decision;
  try {
    decision = await check(req);
  } catch (err) {
    // A denial, not an HTTP error (see admission.ts).
    log.error({ err }, 'admission check failed');
    const { error } = toHttpError(err).body;
    return deny(503, `the gate could not decide: ${error.code}: ${error.message}`);
  }
  const auditAnnotations: Record<string, string> = { decision: decision.id };
  if (decision.override) auditAnnotations['break-glass'] = decision.override.requestId;
  // a break-glass request named and refused says why, wherever the deployer reads the answer
  const refusals = (decision.breakGlassRefused ?? []).map(
    (r) => `break-glass request ${r.requestId ?? '(unnamed)'} refused: ${r.code}: ${r.message}`,
  );
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
        `denied for ${decision.environment} (decision ${decision.id}): ${[...violations, ...refusals].join('; ')}`,
      ),
      auditAnnotations,
    };
  }
  // A dry-run allows a would-deny: kubectl shows warnings, so the deployer still sees why.
  const warnings =
    decision.outcome === 'deny'
      ? violations.map((v) => `gate dry-run would deny: ${v}`.slice(0, 256))
      : decision.override
        ? [
            `gate: admitted by break-glass override, request ${decision.override.requestId} (decision ${decision.id}), overriding ${[...new Set(decision.override.overridden)].join(', ') || 'nothing'}`.slice(
              0,
              256,
            ),
          ]
        : [];
  return { allowed: true, auditAnnotations, ...(warnings.length > 0 ? { warnings } : {}) };
}

/**
 * One subject per distinct digest, named after the first repository that uses it; its image
 * reference goes with it, so the registry source searches that repository for its attestations.
 */
export function releaseSet(images: ContainerImage[]): CheckRequest['subjects'] {
  const byHex = new Map<string, Subject>();
  for (const i of images) {
    const p = parsePinnedImage(i.image)!;
    if (byHex.has(p.hex)) continue;
    const image = pullableRef(i.image);
    byHex.set(p.hex, {
      digest: { algorithm: 'sha256', hex: p.hex },
      name: p.repository,
      ...(image ? { image } : {}),
    });
  }
  return [...byHex.values()];
}

/** A reference kubelet could not pull either gets no repository to search (other sources still count). */
function pullableRef(reference: string): ImageRef | undefined {
  try {
    return parseImageReference(reference).ref;
  } catch {
    return undefined;
  }
}

export function notPinned(i: ContainerImage): string {
  const shown = i.image === '' ? 'no image' : `image ${JSON.stringify(i.image)}`;
  return `${i.container}: ${shown} is not pinned by digest (use NAME@sha256:<64 hex>)`;
}

export function nameOf(req: AdmissionRequest): string {
  const meta = (req.object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)
    ?.metadata;
  const name = req.name || meta?.name || meta?.generateName;
  return typeof name === 'string' && name !== '' ? name : '(unnamed)';
}

export function deny(code: number, message: string): AdmissionResult {
  return {
    allowed: false,
    status: { code, message: message.replace(/\s*\n\s*/g, ' ').slice(0, 4000) },
  };
}
