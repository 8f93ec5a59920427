import type Database from 'better-sqlite3';

/** As an attacker holding the ledger file would: every append-only trigger dropped. */
export function dropTriggers(db: Database.Database): void {
  const triggers = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
    .all() as Array<{ name: string }>;
  for (const t of triggers) db.exec(`DROP TRIGGER "${t.name}"`);
}
