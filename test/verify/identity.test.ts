import { describe, expect, it } from 'vitest';
import { checkIdentity, compileIdentityRules } from '../../src/verify/identity.js';
import type { Signer } from '../../src/verify/types.js';
import { expectCode } from '../helpers.js';

const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';
const signer: Signer = {
  kind: 'keyless',
  identity: WORKFLOW,
  issuer: ISSUER,
  extensions: {
    issuer: ISSUER,
    sourceRepositoryURI: 'https://github.com/acme/app',
    sourceRepositoryRef: 'refs/heads/main',
    runnerEnvironment: 'github-hosted',
  },
};

describe('identity rules', () => {
  it('matches an exact san and issuer', () => {
    const rule = checkIdentity(signer, compileIdentityRules([{ san: WORKFLOW, issuer: ISSUER }]));
    expect(rule.san).toBe(WORKFLOW);
  });

  it('rejects another issuer', () =>
    expectCode(
      () =>
        checkIdentity(
          signer,
          compileIdentityRules([{ san: WORKFLOW, issuer: 'https://accounts.google.com' }]),
        ),
      'IDENTITY_MISMATCH',
      /issuer is not https:\/\/accounts\.google\.com/,
    ));

  describe('when the rule is a regular expression', () => {
    it('matches the whole san', () => {
      const rules = compileIdentityRules([
        { sanRegExp: 'https://github\\.com/acme/[^/]+/\\.github/workflows/.*', issuer: ISSUER },
      ]);
      expect(checkIdentity(signer, rules).sanRegExp).toBeDefined();
    });
    it('is anchored at the start: a prefix elsewhere does not match', () =>
      expectCode(
        () =>
          checkIdentity(
            signer,
            compileIdentityRules([{ sanRegExp: 'github\\.com/acme/app/.*', issuer: ISSUER }]),
          ),
        'IDENTITY_MISMATCH',
      ));
    it('is anchored at the end: a partial match does not count', () =>
      expectCode(
        () =>
          checkIdentity(
            signer,
            compileIdentityRules([{ sanRegExp: 'https://github\\.com/acme/app', issuer: ISSUER }]),
          ),
        'IDENTITY_MISMATCH',
      ));
    it('keeps an alternation inside the anchors', () =>
      expectCode(
        () =>
          checkIdentity(
            signer,
            compileIdentityRules([{ sanRegExp: 'nobody|https://github', issuer: ISSUER }]),
          ),
        'IDENTITY_MISMATCH',
      ));
    it('rejects an invalid expression when compiled', () =>
      expectCode(
        () => compileIdentityRules([{ sanRegExp: '(', issuer: ISSUER }]),
        'IDENTITY_RULE_INVALID',
      ));
  });

  describe('when the rule constrains fulcio extensions', () => {
    it('passes when every named extension is equal', () => {
      const rules = compileIdentityRules([
        {
          san: WORKFLOW,
          issuer: ISSUER,
          extensions: {
            sourceRepositoryRef: 'refs/heads/main',
            runnerEnvironment: 'github-hosted',
          },
        },
      ]);
      expect(checkIdentity(signer, rules).extensions?.runnerEnvironment).toBe('github-hosted');
    });
    it('rejects a different ref', () =>
      expectCode(
        () =>
          checkIdentity(
            signer,
            compileIdentityRules([
              {
                san: WORKFLOW,
                issuer: ISSUER,
                extensions: { sourceRepositoryRef: 'refs/heads/dev' },
              },
            ]),
          ),
        'IDENTITY_MISMATCH',
        /sourceRepositoryRef is "refs\/heads\/main", not "refs\/heads\/dev"/,
      ));
    it('rejects an absent extension', () =>
      expectCode(
        () =>
          checkIdentity(
            signer,
            compileIdentityRules([
              { san: WORKFLOW, issuer: ISSUER, extensions: { buildConfigURI: 'x' } },
            ]),
          ),
        'IDENTITY_MISMATCH',
        /buildConfigURI is absent/,
      ));
  });

  it('accepts when any one of several rules matches', () => {
    const rules = compileIdentityRules([
      { san: 'someone@example.com', issuer: 'https://accounts.google.com' },
      { san: WORKFLOW, issuer: ISSUER },
    ]);
    expect(checkIdentity(signer, rules).issuer).toBe(ISSUER);
  });

  it('names every rule it tried when none matches', () =>
    expectCode(
      () =>
        checkIdentity(
          signer,
          compileIdentityRules([
            { san: 'a@example.com', issuer: ISSUER },
            { san: 'b@example.com', issuer: ISSUER },
          ]),
        ),
      'IDENTITY_MISMATCH',
      /a@example\.com.*b@example\.com/,
    ));

  it('refuses an empty rule list', () =>
    expectCode(() => checkIdentity(signer, []), 'IDENTITY_RULE_INVALID'));
  it('refuses a rule without an issuer', () =>
    expectCode(() => compileIdentityRules([{ san: 'x', issuer: '' }]), 'IDENTITY_RULE_INVALID'));
  it('refuses a rule with both san and sanRegExp', () =>
    expectCode(
      () => compileIdentityRules([{ san: 'x', sanRegExp: 'x', issuer: ISSUER }]),
      'IDENTITY_RULE_INVALID',
    ));
});
