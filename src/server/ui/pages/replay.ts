import type { Replay } from '../../../api/audit.js';
import { html, type Html } from '../html.js';
import { dataTable, facts, notice, page } from '../layout.js';
import { decisionLink } from './format.js';

type ReplayRun = NonNullable<Replay['now']>;

const verdictText = (v: { allow: boolean; violations: string[] }) =>
  v.allow ? 'allow' : `deny: ${v.violations.join(', ')}`;

function run(title: string, r: ReplayRun | undefined, missing?: string): Html {
  if (!r)
    return html`<tr>
      <th scope="row">${title}</th>
      <td colspan="3">${missing ?? 'not run'}</td>
    </tr>`;
  return html`<tr>
    <th scope="row">${title}</th>
    <td>${verdictText(r)}</td>
    <td class="${r.same ? 'same' : 'different'}">${r.same ? 'same' : 'different'}</td>
    <td><code>${r.policy}</code></td>
  </tr>`;
}

/** The replay's answer: same or different, and each evaluation beside the record. */
export function replayPage(r: Replay): Html {
  return page(
    { title: `Replay of ${r.id}`, current: '/ui/decisions', signedIn: true },
    html`<p class="verdict ${r.same ? 'same' : 'different'}" role="status">
        ${r.same ? 'Same: every evaluation agrees with the record.' : 'Different: an evaluation disagrees with the record.'}
      </p>
      ${facts([
        ['Recorded', verdictText(r.recorded)],
        ['Recorded policy', r.recorded.policy ? html`<code>${r.recorded.policy}</code>` : 'none'],
      ])}
      ${dataTable(
        ['Evaluated with', 'Verdict', 'Against the record', 'Policy'],
        [run('the policy of the time', r.then, r.thenMissing), run("this server's policy", r.now)],
      )}
      ${r.thenMissing ? notice('info', r.thenMissing) : ''}
      <p>${decisionLink(r.id, 'Back to the decision')}</p>`,
  );
}
