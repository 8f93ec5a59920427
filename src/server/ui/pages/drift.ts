import type { Decision } from '../../../decision.js';
import type { RecheckStatus } from '../../../recheck.js';
import { html, uiPath, type Html } from '../html.js';
import { dataTable, notice, page } from '../layout.js';
import { decisionLink, outcomeBadge, subjectLinks } from './format.js';

/** One recorded recheck (`gate recheck`), judged against the decision it re-decided. */
export interface RecheckView {
  decision: Decision;
  of: { id: string; outcome: string };
  status: RecheckStatus;
  reasons: string[];
}

const STATUSES: RecheckStatus[] = ['drift', 'covered', 'undecided', 'unchanged'];

/** The rechecks recorded in the ledger, newest first; drift (was allowed, now denied) marked. */
export function driftPage(
  rechecks: RecheckView[],
  opts: { status?: RecheckStatus; scanned: number },
): Html {
  const shown = opts.status ? rechecks.filter((r) => r.status === opts.status) : rechecks;
  const drift = rechecks.filter((r) => r.status === 'drift').length;
  return page(
    { title: 'Recheck drift', current: '/ui/drift', signedIn: true },
    html`<p class="verdict ${drift ? 'different' : 'same'}" role="status">
        ${
          drift
            ? `${drift} recheck${drift === 1 ? '' : 's'} found drift: allowed then, denied now.`
            : 'No drift: nothing allowed then is denied now.'
        }
      </p>
      <p class="hint">
        Decisions made by <code>gate recheck</code> among the newest ${opts.scanned} recorded. Show:
        <a href="/ui/drift">all</a>
        ${STATUSES.map((s) => html` · <a href="${uiPath(['drift'], { status: s })}">${s}</a>`)}
      </p>
      ${
        shown.length === 0
          ? notice('info', 'No recheck is recorded here.')
          : dataTable(
              ['Rechecked (UTC)', 'Status', 'Environment', 'Subjects', 'Then → now', 'Why'],
              shown.map(
                (r) =>
                  html`<tr>
                    <td>${decisionLink(r.decision.id, r.decision.time)}</td>
                    <td class="${r.status === 'drift' ? 'different' : ''}">${r.status}</td>
                    <td>${r.decision.environment}</td>
                    <td>${subjectLinks(r.decision.subjects, true)}</td>
                    <td>
                      ${decisionLink(r.of.id, r.of.outcome)} → ${outcomeBadge(r.decision.outcome)}
                    </td>
                    <td>
                      <ul>
                        ${r.reasons.map((x) => html`<li>${x}</li>`)}
                      </ul>
                    </td>
                  </tr>`,
              ),
            )
      }`,
  );
}

export function isRecheckStatus(s: unknown): s is RecheckStatus {
  return typeof s === 'string' && (STATUSES as string[]).includes(s);
}
