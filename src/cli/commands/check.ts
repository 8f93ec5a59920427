import { appendFileSync, writeFileSync } from 'node:fs';
import { renderMarkdown } from '../markdown.js';
import path from 'node:path';
import { loadConfig, type GateConfig } from '../../config.js';
import type { Decision } from '../../decision.js';
import { GateError } from '../../errors.js';
import { createGate, type CheckRequest } from '../../gate.js';
import {
  isPlainObject,
  jsonDepthExceeds,
  MAX_CONTEXT_DEPTH,
  parseJSON,
  readBoundedFile,
} from '../../util/input.js';
import { parseSubject } from '../../subject.js';
import { EXIT, type CommandIO, reportError } from '../io.js';

export interface CheckOptions {
  subject?: string[];
  image?: string[];
  env: string;
  config?: string;
  bundle?: string[];
  bundleDir?: string[];
  rekorUrl?: string;
  storeUrl?: string;
  trustedRoot?: string;
  policy?: string;
  breakGlass?: string[];
  /** the id of a break-glass request stored in the ledger (POST /v1/break-glass) */
  breakGlassId?: string;
  context?: string;
  dryRun?: boolean;
  /** decide as of this RFC 3339 time */
  at?: string;
  format?: 'text' | 'json';
  /** where to write the signed verification summary when the decision is an enforced allow */
  vsa?: string;
  /** a file to append the decision to as Markdown (GitHub's $GITHUB_STEP_SUMMARY) */
  summary?: string;
}

/**
 * `gate check`: the gate's main job. Exit 0 allow, 1 deny, 2 could not decide. The decision is
 * recorded before it is printed.
 */
export async function checkCommand(opts: CheckOptions, io: CommandIO): Promise<number> {
  try {
    const config = withFlags(loadConfig(opts.config, { cwd: io.cwd, env: io.env }), opts, io.cwd);
    const at = opts.at === undefined ? undefined : parseAt(opts);
    if (!opts.subject?.length && !opts.image?.length)
      throw new GateError('USAGE_ERROR', 'name what to decide on: --subject or --image');
    const req: CheckRequest = {
      ...(at ? { at } : {}),
      subjects: (opts.subject ?? []).map(parseSubject),
      ...(opts.image?.length ? { images: opts.image } : {}),
      environment: opts.env,
      context: opts.context ? readContext(path.resolve(io.cwd, opts.context)) : {},
      bundles: [...(opts.bundle ?? []), ...(opts.bundleDir ?? [])].map((p) =>
        path.resolve(io.cwd, p),
      ),
      dryRun: opts.dryRun,
      breakGlass: (opts.breakGlass ?? []).map((f) => {
        const file = path.resolve(io.cwd, f);
        return {
          source: `file:${file}`,
          bytes: readBoundedFile(file, undefined, 'break-glass request'),
        };
      }),
      ...(opts.breakGlassId ? { breakGlassId: opts.breakGlassId } : {}),
    };
    const gate = await createGate(config);
    try {
      const decision = await gate.check(req);
      if (opts.vsa && decision.outcome === 'allow' && decision.mode === 'enforce') {
        writeSummary(path.resolve(io.cwd, opts.vsa), gate.summarize(decision));
      }
      if (opts.summary) appendSummary(path.resolve(io.cwd, opts.summary), renderMarkdown(decision));
      io.stdout(
        opts.format === 'json'
          ? `${JSON.stringify(decision, null, 2)}\n`
          : renderDecision(decision),
      );
      return decision.outcome === 'error' ? EXIT.error : decision.allow ? EXIT.ok : EXIT.failed;
    } finally {
      await gate.close();
    }
  } catch (err) {
    reportError(err, io);
    // Before a decision exists, every failure means the gate could not decide.
    return EXIT.error;
  }
}

/**
 * `--at` answers an auditor's question (what would the gate have said then?): it neither signs
 * a summary nor spends a break-glass request, which are acts of now.
 */
function parseAt(opts: CheckOptions): Date {
  const raw = opts.at!;
  const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
  const at = new Date(raw);
  if (!RFC3339.test(raw) || Number.isNaN(at.getTime()))
    throw new GateError('USAGE_ERROR', `--at ${JSON.stringify(raw)} is not an rfc 3339 time`);
  if (opts.vsa || opts.breakGlass?.length)
    throw new GateError('USAGE_ERROR', '--at cannot be combined with --vsa or --break-glass');
  return at;
}

function appendSummary(file: string, markdown: string): void {
  try {
    appendFileSync(file, markdown);
  } catch (err) {
    throw new GateError('INPUT_UNREADABLE', `cannot write the summary to ${file}`, { cause: err });
  }
}

/** Writes the signed verification summary the promotion rule of the next environment accepts. */
function writeSummary(file: string, summary: unknown): void {
  try {
    writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  } catch (err) {
    throw new GateError('INPUT_UNREADABLE', `cannot write the summary to ${file}`, { cause: err });
  }
}

function withFlags(config: GateConfig, opts: CheckOptions, cwd: string): GateConfig {
  const at = (p: string) => path.resolve(cwd, p);
  return {
    ...config,
    ...(opts.trustedRoot ? { trustedRoot: at(opts.trustedRoot) } : {}),
    ...(opts.policy ? { policy: { ...config.policy, path: at(opts.policy) } } : {}),
    sources: {
      ...config.sources,
      ...(opts.rekorUrl ? { rekor: { url: opts.rekorUrl } } : {}),
      ...(opts.storeUrl ? { store: { url: opts.storeUrl } } : {}),
    },
  };
}

function readContext(file: string): Record<string, unknown> {
  const bytes = readBoundedFile(file, 256 * 1024, 'context');
  if (jsonDepthExceeds(bytes.toString('utf8'), MAX_CONTEXT_DEPTH))
    throw new GateError('INPUT_TOO_DEEP', `context nests more than ${MAX_CONTEXT_DEPTH} levels`);
  const ctx = parseJSON(bytes, 'context');
  if (!isPlainObject(ctx)) throw new GateError('USAGE_ERROR', 'context must be a json object');
  return ctx;
}

/** One line per place searched: `searched oci:HOST/NAME: referrers-api absent, referrers-tag 2 listed, 1 taken`. */
function searchedLines(searched: NonNullable<Decision['searched']>): string[] {
  const byPlace = new Map<string, string[]>();
  for (const s of searched) {
    const key = `${s.where}@${s.subject.slice(0, 19)}`;
    const what =
      s.outcome === 'listed'
        ? `${s.layout} ${s.referrers} listed, ${s.bundles} taken${s.rejected ? `, ${s.rejected} rejected` : ''}`
        : `${s.layout} ${s.outcome}`;
    byPlace.set(key, [...(byPlace.get(key) ?? []), what]);
  }
  return [...byPlace].map(([where, what]) => `  searched ${where}: ${what.join('; ')}`);
}

export function renderDecision(d: Decision): string {
  const head = {
    allow: 'ALLOW',
    deny: d.mode === 'dry-run' ? 'DENY (dry-run: allowed, recorded as a deny)' : 'DENY',
    override: 'ALLOW BY BREAK-GLASS OVERRIDE',
    error: 'COULD NOT DECIDE',
  }[d.outcome];
  const subjects = d.subjects.map((s) => {
    const label = s.image?.reference ?? s.name;
    return `${label ? `${label} ` : ''}${Object.entries(s.digest)[0]!.join(':')}`;
  });
  const asOf = d.asOf ? ` as of ${d.asOf}` : '';
  const lines = [`${head}: ${subjects.join(', ')} for ${d.environment}${asOf}`];
  if (d.error) lines.push(`  ${d.error.code}: ${d.error.message}`);
  for (const v of d.violations) {
    lines.push(`  x ${v.id}: ${v.message}`);
    if (v.remediation) lines.push(`      would pass: ${v.remediation}`);
  }
  for (const w of d.warnings) lines.push(`  ! ${w.id}: ${w.message}`);
  const used = d.evidence.filter((e) => e.status === 'verified');
  const rejected = d.evidence.filter(
    (e) => e.status === 'rejected' && e.code !== 'SUBJECT_MISMATCH',
  );
  lines.push(`  evidence: ${used.length} verified, ${rejected.length} rejected`);
  for (const e of used) lines.push(`    + ${e.predicateType} from ${e.source}`);
  for (const e of rejected) lines.push(`    - ${e.source}: ${e.code}: ${e.message}`);
  if (d.override) {
    lines.push(
      `  override ${d.override.requestId} by ${d.override.requester} (ticket ${d.override.ticket}, expires ${d.override.expiresAt})`,
    );
    lines.push(`    justification: ${d.override.justification}`);
    lines.push(`    overrode: ${d.override.overridden.join(', ')}`);
  }
  for (const r of d.breakGlassRefused ?? [])
    lines.push(`  break-glass refused: ${r.code}: ${r.message}`);
  for (const f of d.sourceFailures)
    lines.push(`  could not look at ${f.source}: ${f.code}: ${f.message}`);
  for (const line of searchedLines(d.searched ?? [])) lines.push(line);
  lines.push(`  decision ${d.id} recorded; policy ${d.digests.policy?.slice(0, 12)}`);
  return `${lines.join('\n')}\n`;
}
