// The migration in progress (migrations/current.sql) applied to a test's
// database after the committed ones, as `npm run db:watch -- --once` would:
// tests of SQL that is not committed yet run against it. Once it is committed
// (`npm run db:commit`), current.sql is empty and this changes nothing.
import { watchCurrent } from '../../src/database/migrations.ts';
import type { Harness } from './harness.ts';

export async function applyCurrentMigration(h: Harness): Promise<void> {
  const lines: string[] = [];
  const watcher = watchCurrent(h.config, h.gateway.db, { once: true, log: (line) => lines.push(line) });
  const applied = await watcher.first;
  watcher.stop();
  if (!applied) throw new Error(`migrations/current.sql did not apply:\n${lines.join('\n')}`);
}
