import { copyFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditLedger } from '../../src/audit/ledger.js';
import { createSqliteLedger } from '../../src/audit/sqlite.js';

/** As an attacker holding the ledger file would: every append-only trigger dropped. */
export function dropTriggers(db: Database.Database): void {
  const triggers = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
    .all() as Array<{ name: string }>;
  for (const t of triggers) db.exec(`DROP TRIGGER "${t.name}"`);
}

let copies = 0;

/** A copy of a pristine ledger in `dir`, edited with raw SQL after the triggers were dropped. */
export function tamperedCopy(pristine: string, dir: string, sql: string): AuditLedger {
  const file = path.join(dir, `copy-${copies++}.db`);
  copyFileSync(pristine, file);
  const db = new Database(file);
  dropTriggers(db);
  db.exec(sql);
  db.close();
  return createSqliteLedger({ path: file });
}
