import { createHash, verify as cryptoVerify } from 'node:crypto';
import type { HandlerFn } from '@sigstore/mock';

export const CREATE_ENTRY_PATH = '/api/v1/log/entries';

const sha256hex = (data: Buffer | string): string =>
  createHash('sha256').update(data).digest('hex');

/** DSSE pre-authentication encoding (DSSEv1 SP len(type) SP type SP len(body) SP body). */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

interface ProposedDSSE {
  kind: 'dsse';
  apiVersion: string;
  spec: { proposedContent?: { envelope: string; verifiers: string[] } };
}

/**
 * Turns a proposed dsse 0.0.1 entry into the body real Rekor stores (sigstore/rekor
 * pkg/types/dsse/v0.0.1 Unmarshal + Canonicalize): envelopeHash = sha256 of the submitted envelope
 * string, payloadHash = sha256 of the decoded payload, one {signature, verifier} per signature
 * (sorted by signature), proposedContent dropped. @sigstore/mock logs the proposed form verbatim,
 * which @sigstore/verify rejects ("signature count mismatch"). Like Rekor, every signature must
 * verify under one of the submitted verifiers.
 */
export function canonicalDSSEEntry(proposed: ProposedDSSE): object {
  const content = proposed.spec.proposedContent;
  if (!content) throw new Error('dsse entry without proposedContent');
  const env = JSON.parse(content.envelope) as {
    payload: string;
    payloadType: string;
    signatures: { sig: string }[];
  };
  const payload = Buffer.from(env.payload, 'base64');
  const pae = preAuthEncoding(env.payloadType, payload);
  const signatures = env.signatures.map(({ sig }) => {
    const verifier = content.verifiers.find((v) =>
      cryptoVerify(
        'sha256',
        pae,
        Buffer.from(v, 'base64').toString('utf8'),
        Buffer.from(sig, 'base64'),
      ),
    );
    if (!verifier) throw new Error('all signatures must have a key that verifies it');
    return { signature: sig, verifier };
  });
  signatures.sort((a, b) => (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0));
  return {
    apiVersion: proposed.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256hex(content.envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256hex(payload) },
      signatures,
    },
  };
}

/** Wraps @sigstore/mock's rekorHandler so dsse entries are logged in their canonical form. */
export function canonicalizingRekorHandler(inner: HandlerFn): HandlerFn {
  return async (body) => {
    let entry: { kind?: string };
    try {
      entry = JSON.parse(body) as { kind?: string };
      if (entry.kind === 'dsse') entry = canonicalDSSEEntry(entry as ProposedDSSE);
    } catch (e) {
      return { statusCode: 400, response: e instanceof Error ? e.message : String(e) };
    }
    return inner(JSON.stringify(entry));
  };
}
