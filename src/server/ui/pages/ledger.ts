import { normaliseKeyId } from '../../../api/verify.js';
import { html, type Html } from '../html.js';
import { facts, notice, page } from '../layout.js';
import type { LedgerHealth } from '../ledger-view.js';
import { decisionLink } from './format.js';

/** Ledger health: the records, how far the chain verifies, the last checkpoint and its key. */
export function ledgerPage(h: LedgerHealth): Html {
  const v = h.verification;
  const b = v.firstBroken;
  const last = h.checkpoints.at(-1);
  const chained = v.chained !== false;
  const status = v.ok
    ? chained
      ? html`<p class="verdict same" role="status">Verified: all ${v.records} records</p>`
      : html`<p class="verdict same" role="status">
          No hash chain; the ${v.records} records parse and each break-glass request was used once
        </p>`
    : html`<p class="verdict different" role="alert">
        Broken at record ${b?.seq ?? '?'}: <code>${b?.code ?? ''}</code> ${b?.reason ?? ''}
      </p>`;
  return page(
    { title: 'Ledger health', current: '/ui/ledger', signedIn: true },
    html`${status}
      ${facts([
        ['Backend', h.backend],
        ['Records', String(v.records)],
        [
          'Chain verified up to',
          chained
            ? `record ${h.verifiedUpTo}`
            : 'not chained (JSON Lines): an edited or removed record cannot be seen',
        ],
        [
          'First broken',
          b
            ? html`record
              ${b.seq}${b.id ? html` (${decisionLink(b.id)})` : ''}${b.table ? ` in ${b.table}` : ''}`
            : undefined,
        ],
        ['Checkpoints', String(h.checkpoints.length)],
        [
          'Checkpoint key (configured)',
          h.configuredKeyId
            ? html`<code>${h.configuredKeyId}</code>`
            : 'none: checkpoints are not verified',
        ],
      ])}
      <h2>Last checkpoint</h2>
      ${
        last
          ? facts([
              ['Size', `${last.size} records`],
              ['Head hash', html`<code>${last.headHash}</code>`],
              ['Signed at (UTC)', last.time],
              ['Key id', html`<code>${last.keyId}</code>`],
              [
                'Key',
                h.configuredKeyId === undefined
                  ? 'no key configured to check it against'
                  : sameKeyId(last.keyId, h.configuredKeyId)
                    ? 'the configured key'
                    : 'not the configured key',
              ],
            ])
          : notice(
              'info',
              chained
                ? 'No checkpoint has been signed yet.'
                : 'A JSON Lines ledger has no checkpoints.',
            )
      }`,
  );
}

/** Checkpoints name their key in cosign's hint form (base64); ledgers before it wrote hex. */
function sameKeyId(recorded: string, configured: string): boolean {
  return normaliseKeyId(recorded) === configured;
}
