import { parseArgs } from 'node:util';
import * as gm from 'graphile-migrate';
import { migrateSettings, resetBlocker, withMigrationLock } from '../database/migrations.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbReset: Command = {
  name: 'db:reset',
  summary: 'drop and recreate the database (--erase)',
  usage: `npm run db:reset -- --erase [--shadow]   drop and recreate the database and run the committed migrations: ALL DATA IS DELETED

  --erase    confirms it
  --shadow   reset the shadow database instead
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { erase: { type: 'boolean' }, shadow: { type: 'boolean' } } });
    if (!values.erase) {
      process.stderr.write('db:reset drops and recreates the database, deleting all data. Add --erase to confirm.\n');
      return 2;
    }
    const shadow = values.shadow ?? false;
    await usingDatabase(config, 'db:reset', async (db) => {
      // Refuse before anything is dropped, rather than fail half-way with no database.
      const blocker = await resetBlocker(config, db, shadow);
      if (blocker) {
        throw new Error(
          `db:reset refused, nothing was dropped: ${blocker}. Run \`npm run db:bootstrap\` with ROOT_DATABASE_URL once, or set ROOT_DATABASE_URL to a superuser for db:reset`,
        );
      }
      const reset = () => gm.reset(migrateSettings(config, db), shadow);
      if (db.backend === 'server' && !shadow) {
        // The server's migration lock is held on a connection to this very
        // database, which DROP DATABASE refuses ("being accessed by other
        // users"): wait for a migration in progress to end, then reset without
        // it. DROP DATABASE refuses while any other session is connected, so
        // nothing can run in the middle of the drop either.
        await withMigrationLock(config, async () => undefined);
        await reset();
      } else {
        await withMigrationLock(config, reset);
      }
    });
  },
};
