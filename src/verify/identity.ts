import { ASN1Obj } from '@sigstore/core';
import type { Signer as LibSigner } from '@sigstore/verify';
import { GateError, VerifyError } from '../errors.js';
import type { FulcioExtensionName, IdentityRule, Signer } from './types.js';

/** Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md). */
export const FULCIO_EXTENSIONS: Record<string, FulcioExtensionName> = {
  '1.3.6.1.4.1.57264.1.8': 'issuer',
  '1.3.6.1.4.1.57264.1.9': 'buildSignerURI',
  '1.3.6.1.4.1.57264.1.10': 'buildSignerDigest',
  '1.3.6.1.4.1.57264.1.11': 'runnerEnvironment',
  '1.3.6.1.4.1.57264.1.12': 'sourceRepositoryURI',
  '1.3.6.1.4.1.57264.1.13': 'sourceRepositoryDigest',
  '1.3.6.1.4.1.57264.1.14': 'sourceRepositoryRef',
  '1.3.6.1.4.1.57264.1.15': 'sourceRepositoryIdentifier',
  '1.3.6.1.4.1.57264.1.16': 'sourceRepositoryOwnerURI',
  '1.3.6.1.4.1.57264.1.17': 'sourceRepositoryOwnerIdentifier',
  '1.3.6.1.4.1.57264.1.18': 'buildConfigURI',
  '1.3.6.1.4.1.57264.1.19': 'buildConfigDigest',
  '1.3.6.1.4.1.57264.1.20': 'buildTrigger',
  '1.3.6.1.4.1.57264.1.21': 'runInvocationURI',
  '1.3.6.1.4.1.57264.1.22': 'sourceRepositoryVisibilityAtSigning',
};

// The deprecated issuer extension holds the raw string, not a DER UTF8String.
const FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';

/** The keyless signer as the gate reports it: SAN, issuer and every Fulcio extension. */
export function keylessSigner(lib: LibSigner): Signer {
  const extensions: Partial<Record<FulcioExtensionName, string>> = {};
  let legacyIssuer: string | undefined;
  for (const { oid, value } of lib.identity?.oids ?? []) {
    const id = oid?.id.join('.') ?? '';
    const name = FULCIO_EXTENSIONS[id];
    if (name) {
      const text = derUTF8(value);
      if (text !== undefined) extensions[name] = text;
    } else if (id === FULCIO_ISSUER_V1) {
      legacyIssuer = value.toString('utf8');
    }
  }
  const issuer = extensions.issuer ?? legacyIssuer ?? lib.identity?.extensions?.issuer;
  return {
    kind: 'keyless',
    identity: lib.identity?.subjectAlternativeName,
    issuer,
    extensions,
  };
}

function derUTF8(value: Buffer): string | undefined {
  try {
    const obj = ASN1Obj.parseBuffer(Buffer.from(value));
    return obj.value.toString('utf8');
  } catch {
    return undefined;
  }
}

export interface CompiledIdentityRule {
  rule: IdentityRule;
  matchSAN: (san: string) => boolean;
}

/**
 * Compiles identity rules once. A regular expression is always anchored at both ends: an
 * unanchored `sanRegExp` like `https://github.com/org/` would otherwise match any identity that
 * merely contains it (a classic cosign misconfiguration).
 */
export function compileIdentityRules(rules: IdentityRule[]): CompiledIdentityRule[] {
  return rules.map((rule, i) => {
    if (typeof rule.issuer !== 'string' || rule.issuer === '') {
      throw new GateError('IDENTITY_RULE_INVALID', `identity rule ${i} has no issuer`);
    }
    if ((rule.san === undefined) === (rule.sanRegExp === undefined)) {
      throw new GateError(
        'IDENTITY_RULE_INVALID',
        `identity rule ${i} needs exactly one of san or sanRegExp`,
      );
    }
    if (rule.san !== undefined) {
      const san = rule.san;
      return { rule, matchSAN: (s) => s === san };
    }
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${rule.sanRegExp})$`, 'u');
    } catch (err) {
      throw new GateError(
        'IDENTITY_RULE_INVALID',
        `identity rule ${i} has an invalid regular expression`,
        {
          cause: err,
        },
      );
    }
    return { rule, matchSAN: (s) => re.test(s) };
  });
}

/** Throws IDENTITY_MISMATCH unless the signer satisfies at least one rule. */
export function checkIdentity(signer: Signer, rules: CompiledIdentityRule[]): IdentityRule {
  if (rules.length === 0) {
    throw new GateError(
      'IDENTITY_RULE_INVALID',
      'keyless verification needs at least one identity rule',
    );
  }
  const reasons: string[] = [];
  for (const { rule, matchSAN } of rules) {
    const why = mismatch(signer, rule, matchSAN);
    if (why === undefined) return rule;
    reasons.push(why);
  }
  throw new VerifyError(
    'IDENTITY_MISMATCH',
    `signer ${signer.identity ?? '(no san)'} from ${signer.issuer ?? '(no issuer)'} matches no identity rule: ${reasons.join('; ')}`,
  );
}

function mismatch(
  signer: Signer,
  rule: IdentityRule,
  matchSAN: (s: string) => boolean,
): string | undefined {
  if (signer.identity === undefined || !matchSAN(signer.identity)) {
    return `san is not ${rule.san ?? `/${rule.sanRegExp}/`}`;
  }
  if (signer.issuer !== rule.issuer) return `issuer is not ${rule.issuer}`;
  for (const [name, want] of Object.entries(rule.extensions ?? {})) {
    const got = signer.extensions?.[name as FulcioExtensionName];
    if (got !== want)
      return `${name} is ${got === undefined ? 'absent' : JSON.stringify(got)}, not ${JSON.stringify(want)}`;
  }
  return undefined;
}
