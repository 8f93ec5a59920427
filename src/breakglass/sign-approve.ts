import { GateError } from '../errors.js';
import { isPlainObject, parseJSON } from '../util/input.js';
import { schemaChecker } from '../util/schemas.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../verify/attestation.js';
import { BREAK_GLASS_PREDICATE_TYPE, type BreakGlassPredicate } from './types.js';

const checkPredicate = schemaChecker(
  'break-glass-predicate.schema.json',
  'STATEMENT_INVALID',
  'break-glass predicate',
);

export interface RequestToApprove {
  /** the exact bytes the requester signed: a co-signature over other bytes is refused */
  payload: Buffer;
  predicate: BreakGlassPredicate;
  subjects: string[];
  /** where the bytes came from */
  from: 'statement' | 'bundle';
}

/**
 * The statement an approver co-signs, from the request statement file (`gate break-glass
 * request --out`, its bytes as written) or from the requester's bundle (the DSSE payload, as
 * signed, whatever tool signed it). Nothing is verified here: the gate verifies every signature;
 * this only makes sure an approver signs a break-glass request, and says what it is.
 */
export function requestToApprove(bytes: Buffer, file: string): RequestToApprove {
  const doc = parseJSON(bytes, file);
  if (!isPlainObject(doc)) throw new GateError('STATEMENT_INVALID', `${file} is not a json object`);
  let payload = bytes;
  let from: RequestToApprove['from'] = 'statement';
  let statement: unknown = doc;
  if ('dsseEnvelope' in doc || 'messageSignature' in doc) {
    const env = doc.dsseEnvelope;
    if (!isPlainObject(env) || typeof env.payload !== 'string')
      throw new GateError(
        'STATEMENT_INVALID',
        `${file} is a bundle without a dsse envelope: a break-glass request is an attestation`,
      );
    if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE)
      throw new GateError(
        'STATEMENT_INVALID',
        `${file}'s envelope carries ${String(env.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`,
      );
    payload = Buffer.from(env.payload, 'base64');
    from = 'bundle';
    statement = parseJSON(payload, `${file}'s payload`);
  }
  if (!isPlainObject(statement) || statement.predicateType !== BREAK_GLASS_PREDICATE_TYPE)
    throw new GateError(
      'STATEMENT_INVALID',
      `${file} is not a break-glass request (predicate type ${BREAK_GLASS_PREDICATE_TYPE})`,
    );
  checkPredicate(statement.predicate);
  const subjects = Array.isArray(statement.subject)
    ? statement.subject.map((s: unknown) => {
        const d = isPlainObject(s) && isPlainObject(s.digest) ? s.digest : {};
        return Object.entries(d)
          .map(([alg, hex]) => `${alg}:${String(hex)}`)
          .join(' ');
      })
    : [];
  if (subjects.length === 0 || subjects.some((s) => s === ''))
    throw new GateError('STATEMENT_INVALID', `${file} names no subject digest`);
  return { payload, predicate: statement.predicate as BreakGlassPredicate, subjects, from };
}
