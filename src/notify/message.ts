import type { Decision } from '../decision.js';

/** A Slack-compatible announcement of a break-glass override (`text` plus mrkdwn blocks). */
export function breakGlassMessage(d: Decision): {
  text: string;
  blocks: unknown[];
  decision: unknown;
} {
  const o = d.override!;
  const subjects = d.subjects.map(
    (s) => `${s.name ? `${s.name} ` : ''}${Object.entries(s.digest)[0]!.join(':')}`,
  );
  const text = `:rotating_light: break-glass override for ${d.environment}: ${subjects.join(', ')} by ${o.requester} (ticket ${o.ticket})`;
  const detail = [
    `*justification:* ${o.justification}`,
    `*overrode:* ${o.overridden.join(', ') || 'nothing'}`,
    `*signers:* ${o.signers.join(', ')}`,
    `*expires:* ${o.expiresAt}`,
    `*decision:* ${d.id} at ${d.time}`,
  ].join('\n');
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'section', text: { type: 'mrkdwn', text: detail } },
    ],
    decision: {
      id: d.id,
      outcome: d.outcome,
      environment: d.environment,
      subjects: d.subjects,
      override: o,
    },
  };
}
