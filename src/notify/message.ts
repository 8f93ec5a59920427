import type { Decision } from '../decision.js';
import type { Checkpoint } from '../audit/record.js';

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
    ...slack(text, detail),
    decision: {
      id: d.id,
      outcome: d.outcome,
      environment: d.environment,
      subjects: d.subjects,
      override: o,
    },
  };
}

/**
 * A Slack-compatible announcement of a signed ledger checkpoint: a chat channel or a witness that
 * keeps these holds the ledger's head outside the gate, so a ledger later cut short or rewritten
 * below it fails `gate audit verify --checkpoint` (the `checkpoint` field is the file it takes).
 */
export function checkpointMessage(c: Checkpoint): {
  text: string;
  blocks: unknown[];
  checkpoint: Checkpoint;
} {
  const text = `:ledger: audit ledger checkpoint: ${c.size} records, head ${c.headHash.slice(0, 16)}… signed at ${c.time}`;
  const detail = [
    `*size:* ${c.size}`,
    `*head:* ${c.headHash}`,
    `*key:* ${c.keyId}`,
    `*signature:* ${c.signature}`,
  ].join('\n');
  return { ...slack(text, detail), checkpoint: c };
}

/** Slack's shape: `text` for notifications, and the same with its details as mrkdwn blocks. */
function slack(text: string, detail: string): { text: string; blocks: unknown[] } {
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'section', text: { type: 'mrkdwn', text: detail } },
    ],
  };
}

/** What `gate recheck` found about one deployed decision that would now be denied. */
export interface DriftFinding {
  /** the recorded decision that allowed it */
  was: { id: string; time: string; outcome: Decision['outcome'] };
  /** the recheck's own recorded decision */
  now: Decision;
  reasons: string[];
}

/**
 * A Slack-compatible announcement of drift: something allowed (or overridden) and deployed would
 * now be denied, with the reasons and both decisions' ids (`gate audit show ID` has each in full).
 */
export function driftMessage(f: DriftFinding): {
  text: string;
  blocks: unknown[];
  drift: unknown;
} {
  const d = f.now;
  const subjects = d.subjects.map(
    (s) => `${s.name ? `${s.name} ` : ''}${Object.entries(s.digest)[0]!.join(':')}`,
  );
  const text = `:warning: drift in ${d.environment}: ${subjects.join(', ')} was ${f.was.outcome} (decision ${f.was.id}) and would now be ${d.outcome === 'error' ? 'undecided' : 'denied'}`;
  const detail = [
    ...f.reasons.map((r) => `• ${r}`),
    `*rechecked:* ${d.id} at ${d.time}`,
    `*was:* ${f.was.id} at ${f.was.time}`,
  ].join('\n');
  return {
    ...slack(text, detail),
    drift: {
      environment: d.environment,
      subjects: d.subjects,
      was: f.was,
      recheck: { id: d.id, time: d.time, outcome: d.outcome },
      reasons: f.reasons,
      violations: d.violations.map((v) => ({ id: v.id, message: v.message })),
    },
  };
}
