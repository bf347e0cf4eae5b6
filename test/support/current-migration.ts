// The migration in progress (migrations/current.sql) applied to a test's
// database after the committed ones, as `npm run db:watch -- --once` would:
// tests of SQL that is not committed yet run against it. Once it is committed
// (`npm run db:commit`), current.sql is empty and this changes nothing.
import type { Config } from '../../src/config/config.ts';
import { openDatabase, type Database } from '../../src/database/connect.ts';
import { migrateToHead, structuredMigrateLogger, watchCurrent } from '../../src/database/migrations.ts';
import type { DatabaseAccess } from './database.ts';

/** current.sql on `db` (already migrated), once. */
async function runCurrent(config: Config, db: Database): Promise<void> {
  const lines: string[] = [];
  const watcher = watchCurrent(config, db, { once: true, log: (line) => lines.push(line) });
  const applied = await watcher.first;
  watcher.stop();
  if (!applied) throw new Error(`migrations/current.sql did not apply:\n${lines.join('\n')}`);
}

/** On a running harness's database, or a database-only one's (startHarness, startDatabase). */
export async function applyCurrentMigration(h: Pick<DatabaseAccess, 'config' | 'db'>): Promise<void> {
  await runCurrent(h.config, h.db);
}

/** Before a gateway starts (its schema then sees the SQL): the committed migrations, then current.sql. */
export async function migrateWithCurrent(config: Config, purpose = 'test current.sql'): Promise<void> {
  const db = await openDatabase(config, { purpose });
  try {
    await migrateToHead(config, db, structuredMigrateLogger); // as the commands log, at the test's level (not the console)
    await runCurrent(config, db);
  } finally {
    await db.close();
  }
}
