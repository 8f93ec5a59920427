import type { Decision } from '../decision.js';

const HEAD: Record<Decision['outcome'], string> = {
  allow: '✅ Allowed',
  deny: '❌ Denied',
  override: '🚨 Allowed by break-glass override',
  error: '⚠️ Could not decide',
};

/** The decision as a GitHub job summary (Markdown). Cells are escaped: messages are data. */
export function renderMarkdown(d: Decision): string {
  const subjects = d.subjects
    .map((s) => `\`${s.name ? `${s.name} ` : ''}${Object.entries(s.digest)[0]!.join(':')}\``)
    .join(', ');
  const dry = d.mode === 'dry-run' && d.outcome === 'deny' ? ' (dry-run: not enforced)' : '';
  const out = [
    `## gate: ${HEAD[d.outcome]}${dry} for \`${esc(d.environment)}\``,
    '',
    `Subjects: ${subjects}`,
    '',
  ];
  if (d.error) out.push(`**${d.error.code}**: ${esc(d.error.message)}`, '');
  if (d.violations.length) {
    out.push('| rule | why | what would pass |', '| --- | --- | --- |');
    for (const v of d.violations)
      out.push(`| \`${esc(v.id)}\` | ${esc(v.message)} | ${esc(v.remediation)} |`);
    out.push('');
  }
  if (d.override) {
    out.push(
      `**Override** \`${esc(d.override.requestId)}\` by ${esc(d.override.requester)} (ticket ${esc(d.override.ticket)}): ${esc(d.override.justification)}`,
      '',
    );
  }
  for (const w of d.warnings) out.push(`- ⚠️ \`${esc(w.id)}\`: ${esc(w.message)}`);
  const used = d.evidence.filter((e) => e.status === 'verified');
  out.push('', `<details><summary>Evidence: ${used.length} verified</summary>`, '');
  for (const e of used) out.push(`- ${esc(e.predicateType ?? '')} from ${esc(e.source)}`);
  out.push('', '</details>', '', `Decision \`${d.id}\` at ${d.time}, gate ${d.gateVersion}.`, '');
  return out.join('\n');
}

function esc(s: string): string {
  return s.replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`).replace(/\r?\n/g, ' ');
}
