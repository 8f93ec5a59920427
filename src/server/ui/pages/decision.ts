import type { Decision, EvidenceReport } from '../../../decision.js';
import type { RuleResult } from '../../../api/policy.js';
import { html, uiPath, type Html } from '../html.js';
import { dataTable, facts, notice, page } from '../layout.js';
import type { ShownRecord } from '../ledger-view.js';
import { decisionLink, outcomeBadge, subjectDigests } from './format.js';

/** One decision in full: what was asked, on what evidence, what the policy said, and why. */
/** How a recheck compares with the decision it re-decided (src/recheck.ts judge). */
export interface RecheckJudgement {
  status: string;
  reasons: string[];
}

export function decisionPage(r: ShownRecord, judged?: RecheckJudgement): Html {
  const d = r.decision;
  return page(
    { title: `Decision ${d.id}`, current: '/ui/decisions', signedIn: true },
    html`${summary(d)} ${recheckOf(d, judged)}
      <form method="post" action="${uiPath(['decisions', d.id, 'replay'])}">
        <button type="submit">Replay this decision</button>
        <span class="hint"
          >evaluates the recorded input again with the policy of the time and with this server's
          policy</span
        >
      </form>
      ${subjects(d)} ${verdict(d)} ${override(d)} ${evidence(d.evidence)} ${failures(d)}
      ${digests(r)}`,
  );
}

function summary(d: Decision): Html {
  return facts([
    ['Outcome', outcomeBadge(d.outcome)],
    ['Answer', d.allow ? 'allowed' : 'not allowed'],
    ['Environment', d.environment],
    ['Time (UTC)', d.time],
    ['Decided as of', d.asOf],
    ['Mode', d.mode],
    ['Gate version', d.gateVersion],
    ['Rules evaluated', d.rules.join(', ')],
    [
      'Could not decide',
      d.error ? html`<code>${d.error.code}</code> ${d.error.message}` : undefined,
    ],
    ['Caller context keys (unsigned)', d.context?.keys.join(', ')],
  ]);
}

/** A decision made by `gate recheck` links to the one it re-decided, and says what changed. */
function recheckOf(d: Decision, judged?: RecheckJudgement): Html | '' {
  const of = d.recheckOf;
  if (!of) return '';
  const drift = judged?.status === 'drift';
  return html`${notice(
    drift ? 'error' : 'info',
    html`This decision re-checks ${decisionLink(of.id)} (then ${of.outcome}, now
    ${d.outcome})${judged ? html`: <strong>${judged.status}</strong>` : ''}.`,
  )}
  ${
    judged?.reasons.length
      ? html`<ul>
          ${judged.reasons.map((r) => html`<li>${r}</li>`)}
        </ul>`
      : ''
  }`;
}

function subjects(d: Decision): Html {
  return html`<h2>Subjects</h2>
    ${dataTable(
      ['Name', 'Digest', 'Image'],
      d.subjects.map(
        (s) =>
          html`<tr>
            <td>${s.name ?? ''}${s.version ? ` ${s.version}` : ''}</td>
            <td>
              ${subjectDigests(s).map((x) => html`<a class="digest" href="${uiPath(['decisions'], { subject: x })}">${x}</a> `)}
            </td>
            <td>${s.image ? html`<code>${JSON.stringify(s.image)}</code>` : ''}</td>
          </tr>`,
      ),
    )}`;
}

function rules(title: string, list: RuleResult[], none: string): Html {
  return html`<h2>${title}</h2>
    ${
      list.length === 0
        ? html`<p>${none}</p>`
        : dataTable(
            ['Rule', 'What', 'Remediation', 'About'],
            list.map(
              (v) =>
                html`<tr>
                  <td>
                    <a href="${uiPath(['decisions'], { rule: v.id })}"><code>${v.id}</code></a>
                  </td>
                  <td>
                    ${v.message}${v.effectiveOn ? html`<br /><span class="hint">effective on ${v.effectiveOn}</span>` : ''}
                  </td>
                  <td>${v.remediation}</td>
                  <td>
                    ${v.subject ? html`<span class="digest">${v.subject}</span>` : ''}${v.attestations.length ? html`<br /><span class="hint">evidence ${v.attestations.join(', ')}</span>` : ''}
                  </td>
                </tr>`,
            ),
          )
    }`;
}

function verdict(d: Decision): Html {
  const title = d.override ? 'Violations (set aside by the override)' : 'Violations';
  return html`${rules(title, d.violations, 'None: every rule evaluated held.')}
  ${d.warnings.length ? rules('Warnings', d.warnings, '') : ''}`;
}

function override(d: Decision): Html | '' {
  const o = d.override;
  const refused = d.breakGlassRefused ?? [];
  if (!o && refused.length === 0) return '';
  return html`<h2>Break glass</h2>
    ${
      o
        ? facts([
            [
              'Request',
              html`<a href="${uiPath(['break-glass'], { request: o.requestId })}"
                ><code>${o.requestId}</code></a
              >`,
            ],
            [
              'Requester',
              html`<a href="${uiPath(['decisions'], { requester: o.requester })}"
                >${o.requester}</a
              >`,
            ],
            ['Justification', o.justification],
            ['Ticket', o.ticket],
            ['Expires (UTC)', o.expiresAt],
            [
              'Signers',
              html`<ul>
                ${o.signers.map((s) => html`<li>${s}</li>`)}
              </ul>`,
            ],
            ['Rules overridden', o.overridden.join(', ')],
          ])
        : ''
    }
    ${
      refused.length
        ? html`<h3>Requests refused</h3>
            <ul>
              ${refused.map(
                (b) =>
                  html`<li>
                    <code>${b.code}</code>
                    ${b.requestId ? html`<code>${b.requestId}</code>: ` : ''}${b.message}
                    <span class="hint">(${b.source})</span>
                  </li>`,
              )}
            </ul>`
        : ''
    }`;
}

/** Why a piece of evidence counted, or why it did not. */
export function why(e: EvidenceReport): Html {
  if (e.status === 'rejected')
    return html`rejected: <code>${e.code ?? 'unknown'}</code> ${e.message ?? ''}`;
  const s = e.signer;
  const who = s
    ? s.kind === 'key'
      ? `key ${s.keyId ?? ''}`
      : `${s.identity ?? ''} via ${s.issuer ?? ''}`
    : 'unknown signer';
  return html`used: ${e.predicateType ?? ''} signed by
  ${who}${e.logIndex !== undefined ? `, log index ${e.logIndex}` : ''}${e.checkpointOrigin ? ` (${e.checkpointOrigin})` : ''}${e.tlog ? `, ${e.tlog}` : ''}${e.timeSource ? `, time from ${e.timeSource}` : ''}${e.trustRoot ? `, trusted root ${e.trustRoot.name}` : ''}${e.platformManifest ? `, platform ${e.platformManifest.platform ?? e.platformManifest.digest}` : ''}${e.cached ? ' (verification cached)' : ''}`;
}

function evidence(list: EvidenceReport[]): Html {
  return html`<h2>Evidence</h2>
    ${
      list.length === 0
        ? html`<p>No evidence was found.</p>`
        : dataTable(
            ['Status', 'Why', 'Source', 'Id'],
            list.map(
              (e) =>
                html`<tr>
                  <td class="${e.status === 'verified' ? 'same' : 'different'}">${e.status}</td>
                  <td>${why(e)}</td>
                  <td>${e.source}</td>
                  <td class="digest">${e.id}</td>
                </tr>`,
            ),
          )
    }`;
}

function failures(d: Decision): Html | '' {
  const searched = d.searched ?? [];
  if (d.sourceFailures.length === 0 && searched.length === 0) return '';
  return html`${
    d.sourceFailures.length
      ? html`<h2>Sources that failed</h2>
          <ul>
            ${d.sourceFailures.map((f) => html`<li>${f.source}: <code>${f.code}</code> ${f.message}</li>`)}
          </ul>`
      : ''
  }
  ${
    searched.length
      ? html`<h2>Where the sources looked</h2>
          ${dataTable(
            ['Where', 'Layout', 'Subject', 'Outcome', 'Listed / taken / rejected'],
            searched.map(
              (s) =>
                html`<tr>
                  <td>${s.where}</td>
                  <td>${s.layout}</td>
                  <td class="digest">${s.subject}</td>
                  <td>${s.outcome}</td>
                  <td>${s.referrers} / ${s.bundles} / ${s.rejected}</td>
                </tr>`,
            ),
          )}`
      : ''
  }`;
}

function digests(r: ShownRecord): Html {
  const g = r.decision.digests;
  return html`<h2>Digests</h2>
    ${facts([
      ['Policy', g.policy ? html`<code>${g.policy}</code>` : undefined],
      ['Trusted root', html`<code>${g.trustRoot}</code>`],
      ['Configuration', html`<code>${g.config}</code>`],
      ['Policy input', g.input ? html`<code>${g.input}</code>` : undefined],
      ['Ledger record', r.seq !== undefined ? String(r.seq) : 'no hash chain (JSON Lines ledger)'],
      ['Record hash', r.hash ? html`<code>${r.hash}</code>` : undefined],
      ['Previous hash', r.prevHash ? html`<code>${r.prevHash}</code>` : undefined],
    ])}`;
}
