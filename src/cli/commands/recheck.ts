import { loadConfig } from '../../config.js';
import { createGate } from '../../gate.js';
import { parseDuration, recheck, type RecheckItem, type RecheckReport } from '../../recheck.js';
import { EXIT, type CommandIO, reportError } from '../io.js';

export interface RecheckCommandOptions {
  env: string;
  since?: string;
  config?: string;
  format?: 'text' | 'json';
}

/**
 * `gate recheck --env NAME [--since 7d]`: decides again what was allowed or overridden there in
 * the window, records each result linked to what it rechecks, announces drift. Exit 0 nothing
 * changed, 1 drift found, 2 could not run or some subject could not be decided now.
 */
export async function recheckCommand(opts: RecheckCommandOptions, io: CommandIO): Promise<number> {
  try {
    const sinceMs = parseDuration(opts.since ?? '7d', '--since');
    const config = loadConfig(opts.config, { cwd: io.cwd, env: io.env });
    const gate = await createGate(config);
    let report: RecheckReport;
    try {
      report = await recheck(gate, { environment: opts.env, sinceMs });
    } finally {
      await gate.close();
    }
    io.stdout(
      opts.format === 'json' ? `${JSON.stringify(jsonOf(report), null, 2)}\n` : text(report),
    );
    if (report.announceError) io.stderr(`gate: NOTIFY_UNAVAILABLE: ${report.announceError}\n`);
    return report.drift > 0 ? EXIT.failed : report.undecided > 0 ? EXIT.error : EXIT.ok;
  } catch (err) {
    reportError(err, io);
    return EXIT.error;
  }
}

function jsonOf(r: RecheckReport) {
  return {
    ...(r.environment ? { environment: r.environment } : {}),
    from: r.from,
    to: r.to,
    rechecked: r.items.length,
    drift: r.drift,
    undecided: r.undecided,
    announced: r.announced,
    items: r.items.map((i) => ({
      status: i.status,
      reasons: i.reasons,
      subjects: i.of.subjects,
      was: { id: i.of.id, time: i.of.time, outcome: i.of.outcome },
      recheck: {
        id: i.decision.id,
        time: i.decision.time,
        outcome: i.decision.outcome,
        violations: i.decision.violations.map((v) => ({ id: v.id, message: v.message })),
        ...(i.decision.error ? { error: i.decision.error } : {}),
      },
    })),
  };
}

function text(r: RecheckReport): string {
  const head = `recheck of ${r.environment ?? 'every environment'} (decisions from ${r.from} to ${r.to}): ${r.items.length} rechecked, ${r.drift} drift, ${r.undecided} undecided\n`;
  return head + r.items.map(line).join('');
}

function line(i: RecheckItem): string {
  const what = `${i.status.padEnd(9)} ${i.of.subjects.join(', ')}: was ${i.of.outcome} (${i.of.id} at ${i.of.time}), now ${i.decision.outcome} (${i.decision.id})\n`;
  return what + i.reasons.map((r) => `          - ${r}\n`).join('');
}
