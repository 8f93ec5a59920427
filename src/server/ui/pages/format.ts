import type { Decision, Outcome } from '../../../decision.js';
import { html, uiPath, type Html } from '../html.js';

type PolicySubject = Decision['subjects'][number];

export function outcomeBadge(outcome: Outcome): Html {
  return html`<span class="outcome outcome-${outcome}">${outcome}</span>`;
}

/** "sha256:<hex>" for each digest of a subject. */
export function subjectDigests(s: PolicySubject): string[] {
  return Object.entries(s.digest).map(([alg, hex]) => `${alg}:${hex}`);
}

/** A subject's name (when it has one) and its digests, each a link to its decisions. */
export function subjectLinks(subjects: PolicySubject[], short = false): Html {
  return html`${subjects.map(
    (s) =>
      html`<div>
        ${s.name ? html`${s.name}${s.version ? html` ${s.version}` : ''} ` : ''}${subjectDigests(
          s,
        ).map(
          (d) =>
            html`<a class="digest" href="${uiPath(['decisions'], { subject: d })}"
              >${short ? shorten(d) : d}</a
            >`,
        )}
      </div>`,
  )}`;
}

/** "sha256:0123456789ab…" : enough to tell digests apart in a list; the full one is a click away. */
export function shorten(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.length > colon + 13 ? `${digest.slice(0, colon + 13)}…` : digest;
}

export function decisionLink(id: string, text?: string): Html {
  return html`<a href="${uiPath(['decisions', id])}">${text ?? id}</a>`;
}
