import type { Decision } from '../../../decision.js';
import { html, uiPath, type Html } from '../html.js';
import { facts, notice, page } from '../layout.js';
import { decisionLink, subjectDigests } from './format.js';

/** A break-glass request as the ledger shows it: the overrides recorded under its id. */
export interface RequestUse {
  requestId: string;
  requester: string;
  justification: string;
  ticket: string;
  expiresAt: string;
  signers: string[];
  environments: string[];
  /** "sha256:<hex>" of every subject it let through */
  subjects: string[];
  rules: string[];
  /** the overrides, newest first */
  uses: Decision[];
}

/** Groups recorded overrides (newest first) by the request they name. */
export function requestsFrom(overrides: Decision[]): RequestUse[] {
  const byId = new Map<string, RequestUse>();
  for (const d of overrides) {
    const o = d.override;
    if (!o) continue;
    let r = byId.get(o.requestId);
    if (!r) {
      r = { ...o, environments: [], subjects: [], rules: [], uses: [] };
      delete (r as Partial<typeof o>).overridden;
      byId.set(o.requestId, r);
    }
    r.uses.push(d);
    const add = (list: string[], items: string[]) => {
      for (const i of items) if (!list.includes(i)) list.push(i);
    };
    add(r.environments, [d.environment]);
    add(r.subjects, d.subjects.flatMap(subjectDigests));
    add(r.rules, o.overridden);
  }
  return [...byId.values()];
}

function request(r: RequestUse, now: number): Html {
  const active = Date.parse(r.expiresAt) > now;
  return html`<section aria-labelledby="req-${r.requestId}">
    <h3 id="req-${r.requestId}">
      <code>${r.requestId}</code>
      <span class="${active ? 'outcome outcome-override' : 'hint'}"
        >${active ? 'active' : 'expired'}</span
      >
    </h3>
    ${facts([
      [
        'Requester',
        html`<a href="${uiPath(['decisions'], { requester: r.requester })}">${r.requester}</a>`,
      ],
      ['Justification', r.justification],
      ['Ticket', r.ticket],
      ['Expires (UTC)', r.expiresAt],
      [
        'Signers',
        html`<ul>
          ${r.signers.map((s) => html`<li>${s}</li>`)}
        </ul>`,
      ],
      ['Environments', r.environments.join(', ')],
      [
        'Subjects covered',
        html`<ul>
          ${r.subjects.map((s) => html`<li><a class="digest" href="${uiPath(['decisions'], { subject: s })}">${s}</a></li>`)}
        </ul>`,
      ],
      ['Rules overridden', r.rules.join(', ')],
      [
        'Used',
        html`<ul>
          ${r.uses.map((d) => html`<li>${d.time}: ${decisionLink(d.id)} in ${d.environment}</li>`)}
        </ul>`,
      ],
    ])}
  </section>`;
}

export function breakGlassPage(
  requests: RequestUse[],
  opts: { now: number; limit: number; only?: string; scanned: number },
): Html {
  const shown =
    opts.only === undefined ? requests : requests.filter((r) => r.requestId === opts.only);
  const active = shown.filter((r) => Date.parse(r.expiresAt) > opts.now);
  const expired = shown.filter((r) => Date.parse(r.expiresAt) <= opts.now);
  return page(
    { title: 'Break glass', current: '/ui/break-glass', signedIn: true },
    html`<p class="hint">
        Requests named by the overrides recorded in the ledger (the newest ${opts.limit} overrides;
        ${opts.scanned} read).
        ${opts.only !== undefined ? html`Showing request <code>${opts.only}</code> only. <a href="/ui/break-glass">Show all</a>` : ''}
      </p>
      <h2>Active</h2>
      ${active.length ? active.map((r) => request(r, opts.now)) : notice('info', 'No active break-glass request has been used.')}
      <h2>Expired</h2>
      ${expired.length ? expired.map((r) => request(r, opts.now)) : notice('info', 'None.')}`,
  );
}
