import {
  type Checkpoint,
  type LedgerRecord,
  type Replay,
  type ReplayVerdict,
  type ChainVerification,
} from '../../api/audit.js';

/** How `gate audit` shows what it read: tables and sentences for people, JSON for tools. */

export function verdict(r: ChainVerification, signed: boolean, external?: Checkpoint[]): string {
  if (!r.ok) {
    const b = r.firstBroken!;
    const where = `${b.code}${b.table ? ` in ${b.table}` : ''}`;
    return `LEDGER TAMPERED: record ${b.seq}${b.id ? ` (${b.id})` : ''}: ${b.reason} [${where}]\n`;
  }
  if (r.chained === false)
    return `ledger read: ${r.records} records, each once, no break-glass request used twice; a json lines ledger has no hash chain, so edits and removals cannot be seen\n`;
  const held = external?.length
    ? `; it extends the ${external.length} checkpoint${external.length === 1 ? '' : 's'} held outside it (up to size ${Math.max(...external.map((c) => c.size))})`
    : '';
  return `ledger verified: ${r.records} records, ${r.checkpoints} checkpoints${signed ? ' signed by the ledger key' : ' (no public key: signatures not checked)'}${held}\n`;
}

export function replayText(r: Replay): string {
  const policy = (digest: string | undefined) => `policy ${(digest ?? 'unknown').slice(0, 12)}`;
  if (r.same) {
    const also =
      r.now && r.now.policy !== r.then?.policy ? ` and with ${policy(r.now.policy)}` : '';
    const first = r.then ? policy(r.then.policy) : policy(r.now?.policy);
    return `replay of ${r.id}: same result (${describe(r.recorded)}) with ${first}${also}\n`;
  }
  const lines = [
    `replay of ${r.id} DIFFERS:`,
    `  recorded: ${describe(r.recorded)} (${policy(r.recorded.policy)})`,
    `  then:     ${r.then ? `${describe(r.then)} (${policy(r.then.policy)})` : r.thenMissing}`,
    ...(r.now ? [`  now:      ${describe(r.now)} (${policy(r.now.policy)})`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export function view(r: LedgerRecord) {
  return {
    seq: r.seq,
    id: r.id,
    time: r.time,
    environment: r.environment,
    outcome: r.outcome,
    subjects: r.subjects,
    requester: r.requester,
    rules: r.rules,
    hash: r.hash,
  };
}

export function table(records: LedgerRecord[]): string {
  if (records.length === 0) return 'no decisions match\n';
  const rows = records.map((r) => [
    String(r.seq),
    r.time,
    r.environment,
    r.outcome,
    r.subjects.map((s) => s.slice(0, 19)).join(' '),
    r.requester ?? '',
    r.rules.join(','),
  ]);
  const head = ['SEQ', 'TIME', 'ENV', 'OUTCOME', 'SUBJECTS', 'REQUESTER', 'RULES'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

function describe(r: ReplayVerdict): string {
  return r.allow ? 'allow' : `deny: ${r.violations.join(', ') || '(none)'}`;
}
