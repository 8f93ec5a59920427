import type { LedgerQuery } from '../../../api/audit.js';
import type { Decision, Outcome } from '../../../decision.js';
import { isGateError } from '../../../errors.js';
import { parseDigest } from '../../../subject.js';
import { ENVIRONMENT_SCHEMA } from '../../decisions.js';
import { html, type Html } from '../html.js';
import { dataTable, notice, page } from '../layout.js';
import { decisionLink, outcomeBadge, subjectLinks } from './format.js';

const OUTCOMES: Outcome[] = ['allow', 'deny', 'override', 'error'];
const LIMITS = ['25', '50', '100', '500'];
const DEFAULT_LIMIT = 50;
const TEXT_FIELDS = ['subject', 'environment', 'requester', 'rule', 'from', 'to'] as const;

/** The filter form as typed: every field as text, to show it back. */
export type FilterForm = Partial<
  Record<(typeof TEXT_FIELDS)[number] | 'outcome' | 'limit', string>
>;

/**
 * The filters in the query string, checked as /v1/audit checks them: a digest as the CLI parses
 * it, an environment as the policy names it, a time in RFC 3339 (without a zone: UTC).
 */
export function parseFilters(raw: Record<string, unknown>): {
  form: FilterForm;
  query: LedgerQuery;
  errors: string[];
} {
  const form: FilterForm = {};
  for (const k of [...TEXT_FIELDS, 'outcome', 'limit'] as const) {
    const v = raw[k];
    if (typeof v === 'string' && v.trim() !== '') form[k] = v.trim();
  }
  const errors: string[] = [];
  const query: LedgerQuery = { limit: DEFAULT_LIMIT };
  if (form.subject !== undefined) {
    try {
      const d = parseDigest(form.subject);
      query.subject = `${d.algorithm}:${d.hex}`;
    } catch (err) {
      errors.push(`subject: ${isGateError(err) ? err.message : 'not a digest'}`);
    }
  }
  if (form.environment !== undefined) {
    if (
      form.environment.length <= ENVIRONMENT_SCHEMA.maxLength &&
      new RegExp(ENVIRONMENT_SCHEMA.pattern).test(form.environment)
    )
      query.environment = form.environment;
    else
      errors.push(
        'environment: letters, digits, dots, dashes and underscores, as the policy names it',
      );
  }
  if (form.outcome !== undefined) {
    if ((OUTCOMES as string[]).includes(form.outcome)) query.outcome = form.outcome as Outcome;
    else errors.push(`outcome: one of ${OUTCOMES.join(', ')}`);
  }
  for (const k of ['requester', 'rule'] as const) {
    const v = form[k];
    if (v === undefined) continue;
    if (v.length <= 500) query[k] = v;
    else errors.push(`${k}: at most 500 characters`);
  }
  for (const k of ['from', 'to'] as const) {
    const v = form[k];
    if (v === undefined) continue;
    const t = parseTime(v);
    if (t) query[k] = t;
    else errors.push(`${k}: a time such as 2026-12-06T20:00:00Z (without a zone: UTC)`);
  }
  if (form.limit !== undefined) {
    if (LIMITS.includes(form.limit)) query.limit = Number(form.limit);
    else errors.push(`limit: one of ${LIMITS.join(', ')}`);
  }
  return { form, query, errors };
}

const TIME =
  /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:\d{2})?)?$/i;

/** RFC 3339 in UTC, or undefined: a date alone is its midnight, a time without a zone is UTC. */
export function parseTime(text: string): string | undefined {
  const m = TIME.exec(text);
  if (!m) return undefined;
  const iso = m[2] ? `${m[1]}T${m[2]}${m[3] ?? 'Z'}` : `${m[1]}T00:00:00Z`;
  const ms = Date.parse(iso.toUpperCase());
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

function filterForm(form: FilterForm): Html {
  const text = (name: keyof FilterForm, label: string, hint?: string) =>
    html`<p>
      <label for="f-${name}">${label}</label>
      <input id="f-${name}" name="${name}" type="text" value="${form[name] ?? ''}" />
      ${hint ? html`<span class="hint">${hint}</span>` : ''}
    </p>`;
  const select = (name: 'outcome' | 'limit', label: string, options: string[], any?: string) =>
    html`<p>
      <label for="f-${name}">${label}</label>
      <select id="f-${name}" name="${name}">
        ${any !== undefined ? html`<option value="">${any}</option>` : ''}
        ${options.map(
          (o) =>
            html`<option
              value="${o}"
              ${form[name] === o || (name === 'limit' && form.limit === undefined && o === String(DEFAULT_LIMIT)) ? html`selected` : ''}
            >
              ${o}
            </option>`,
        )}
      </select>
    </p>`;
  return html`<form
    class="filters"
    method="get"
    action="/ui/decisions"
    role="search"
    aria-label="Filter decisions"
  >
    ${text('subject', 'Subject', 'sha256:<hex>')} ${text('environment', 'Environment')}
    ${select('outcome', 'Outcome', OUTCOMES, 'any')}
    ${text('requester', 'Requester', 'of a break-glass override')}
    ${text('rule', 'Rule', 'violated or overridden rule id')}
    ${text('from', 'From (inclusive)', 'RFC 3339; no zone: UTC')}
    ${text('to', 'To (exclusive)', 'RFC 3339; no zone: UTC')}
    ${select('limit', 'Show at most', LIMITS)}
    <p class="actions"><button type="submit">Filter</button> <a href="/ui/decisions">Clear</a></p>
  </form>`;
}

function table(decisions: Decision[]): Html {
  if (decisions.length === 0) return notice('info', 'No recorded decision matches these filters.');
  return dataTable(
    ['Time (UTC)', 'Outcome', 'Environment', 'Subjects', 'Rules', 'Decision'],
    decisions.map(
      (d) =>
        html`<tr>
          <td>${d.time}</td>
          <td>${outcomeBadge(d.outcome)}</td>
          <td>${d.environment}</td>
          <td>${subjectLinks(d.subjects, true)}</td>
          <td>
            ${(d.override?.overridden ?? d.violations.map((v) => v.id)).join(', ')}${d.override ? html`<br /><span class="hint">by ${d.override.requester}</span>` : ''}
          </td>
          <td>${decisionLink(d.id, 'Open')}<span class="hint"> ${d.id}</span></td>
        </tr>`,
    ),
    'Newest first',
  );
}

export function decisionsPage(
  form: FilterForm,
  result: { decisions: Decision[]; skipped: number; limit: number } | { errors: string[] },
): Html {
  const body =
    'errors' in result
      ? result.errors.map((e) => notice('error', e))
      : html`<p class="hint">
            ${result.decisions.length}
            decision${result.decisions.length === 1 ? '' : 's'}${result.decisions.length === result.limit ? ' (the newest; narrow the filters or raise the limit for more)' : ''}.
            ${result.skipped > 0 ? `${result.skipped} ledger lines that do not parse were skipped.` : ''}
          </p>
          ${table(result.decisions)}`;
  return page(
    { title: 'Decisions', current: '/ui/decisions', signedIn: true },
    html`${filterForm(form)}${body}`,
  );
}
