import type { Decision } from '../../../decision.js';
import { html, uiPath, type Html } from '../html.js';
import { dataTable, facts, notice, page } from '../layout.js';
import type { BreakGlassRecord } from '../ledger-view.js';
import { decisionLink, subjectDigests } from './format.js';

/** A break-glass request as the ledger shows it: stored, revoked, and the overrides naming it. */
export interface RequestView extends Omit<
  NonNullable<Decision['override']>,
  'reuse' | 'overridden'
> {
  reuse?: string;
  environments: string[];
  /** "sha256:<hex>" of every subject it covers (stored) or let through (overrides) */
  subjects: string[];
  rules: string[];
  /** the overrides, newest first */
  uses: Decision[];
  /** accepted by POST /v1/break-glass and stored in the ledger at this time */
  storedAt?: string;
  revoked?: { time: string; via?: string; reason?: string };
}

export interface Refusal {
  time: string;
  requestId?: string;
  environment: string;
  subjects: string[];
  code: string;
  message: string;
}

const add = (list: string[], items: string[]) => {
  for (const i of items) if (!list.includes(i)) list.push(i);
};

/**
 * The requests from the ledger: each stored one (accepted, perhaps revoked), and each named by a
 * recorded override, stored or presented as bundles (`gate check --break-glass`); the refusals.
 */
export function requestsFrom(
  records: BreakGlassRecord[],
  overrides: Decision[],
): { requests: RequestView[]; refused: Refusal[] } {
  const byId = new Map<string, RequestView>();
  const refused: Refusal[] = [];
  const revocations = new Map<string, NonNullable<RequestView['revoked']>>();
  // oldest first, so a revocation finds the request it ends
  for (const r of [...records].reverse()) {
    const e = r.breakGlass;
    if (e.action === 'accepted' && e.request) {
      const q = e.request;
      byId.set(q.requestId, {
        requestId: q.requestId,
        requester: q.requester,
        justification: q.justification,
        ticket: q.ticket,
        expiresAt: q.expiresAt,
        signers: q.signers,
        ...(q.reuse ? { reuse: q.reuse } : {}),
        environments: [q.environment],
        subjects: [...q.subjects],
        rules: [],
        uses: [],
        storedAt: r.time,
      });
    } else if (e.action === 'revoked' && e.requestId) {
      // a request used only as bundles may be revoked too: applied once its overrides are read
      revocations.set(e.requestId, {
        time: r.time,
        ...(e.via ? { via: e.via } : {}),
        ...(e.reason ? { reason: e.reason } : {}),
      });
    } else if (e.action === 'refused') {
      refused.unshift({
        time: r.time,
        ...(e.requestId ? { requestId: e.requestId } : {}),
        environment: r.environment,
        subjects: r.subjects,
        code: e.refusal?.code ?? '',
        message: e.refusal?.message ?? '',
      });
    }
  }
  for (const d of overrides) {
    const o = d.override;
    if (!o) continue;
    let q = byId.get(o.requestId);
    if (!q) {
      q = {
        requestId: o.requestId,
        requester: o.requester,
        justification: o.justification,
        ticket: o.ticket,
        expiresAt: o.expiresAt,
        signers: o.signers,
        environments: [],
        subjects: [],
        rules: [],
        uses: [],
      };
      byId.set(o.requestId, q);
    }
    q.uses.push(d);
    add(q.environments, [d.environment]);
    add(q.subjects, d.subjects.flatMap(subjectDigests));
    add(q.rules, o.overridden);
  }
  for (const [id, revoked] of revocations) {
    const q = byId.get(id);
    if (q) q.revoked = revoked;
  }
  return { requests: [...byId.values()], refused };
}

type Status = 'active' | 'expired' | 'revoked';
const statusOf = (r: RequestView, now: number): Status =>
  r.revoked ? 'revoked' : Date.parse(r.expiresAt) > now ? 'active' : 'expired';

function request(r: RequestView, now: number): Html {
  const status = statusOf(r, now);
  return html`<section class="request" aria-labelledby="req-${r.requestId}">
    <h3 id="req-${r.requestId}">
      <code>${r.requestId}</code>
      <span class="${status === 'active' ? 'outcome outcome-override' : 'hint'}">${status}</span>
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
      ['Reuse', r.reuse === 'until_expiry' ? 'until it expires' : r.storedAt ? 'once' : undefined],
      [
        'Stored',
        r.storedAt
          ? `${r.storedAt} (POST /v1/break-glass)`
          : 'not stored: presented as bundles (gate check --break-glass)',
      ],
      [
        'Revoked',
        r.revoked
          ? `${r.revoked.time}${r.revoked.via ? ` (${r.revoked.via})` : ''}${r.revoked.reason ? `: ${r.revoked.reason}` : ''}`
          : undefined,
      ],
      ['Environments', r.environments.join(', ')],
      [
        'Subjects covered',
        html`<ul>
          ${r.subjects.map(
            (s) =>
              html`<li>
                <a class="digest" href="${uiPath(['decisions'], { subject: s })}">${s}</a>
              </li>`,
          )}
        </ul>`,
      ],
      ['Rules overridden', r.rules.join(', ')],
      [
        'Used',
        r.uses.length
          ? html`<ul>
              ${r.uses.map(
                (d) => html`<li>${d.time}: ${decisionLink(d.id)} in ${d.environment}</li>`,
              )}
            </ul>`
          : 'not yet',
      ],
    ])}
  </section>`;
}

function refusals(list: Refusal[]): Html {
  if (list.length === 0) return notice('info', 'None.');
  return dataTable(
    ['Time (UTC)', 'Request', 'Why', 'Environment', 'Subjects'],
    list.map(
      (r) =>
        html`<tr>
          <td>${r.time}</td>
          <td><code>${r.requestId ?? '(unreadable)'}</code></td>
          <td><code>${r.code}</code> ${r.message}</td>
          <td>${r.environment}</td>
          <td class="digest">${r.subjects.join(' ')}</td>
        </tr>`,
    ),
  );
}

export function breakGlassPage(
  found: { requests: RequestView[]; refused: Refusal[] },
  opts: { now: number; limit: number; only?: string },
): Html {
  const shown =
    opts.only === undefined
      ? found.requests
      : found.requests.filter((r) => r.requestId === opts.only);
  const section = (status: Status) =>
    shown.filter((r) => statusOf(r, opts.now) === status).map((r) => request(r, opts.now));
  const active = section('active');
  const ended = [...section('revoked'), ...section('expired')];
  return page(
    { title: 'Break glass', current: '/ui/break-glass', signedIn: true },
    html`<p class="hint">
        Requests stored in the ledger and requests named by the overrides it recorded (the newest
        ${opts.limit} of each).
        ${
          opts.only !== undefined
            ? html`Showing request <code>${opts.only}</code> only.
                <a href="/ui/break-glass">Show all</a>`
            : ''
        }
      </p>
      <h2>Active</h2>
      ${active.length ? active : notice('info', 'No active break-glass request.')}
      <h2>Revoked or expired</h2>
      ${ended.length ? ended : notice('info', 'None.')}
      <h2>Refused</h2>
      ${refusals(opts.only === undefined ? found.refused : found.refused.filter((r) => r.requestId === opts.only))}`,
  );
}
