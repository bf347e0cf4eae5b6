import { parseArgs } from 'node:util';
import * as gm from 'graphile-migrate';
import { ensureRoles, migrateSettings, withMigrationLock } from '../database/migrations.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbCommit: Command = {
  name: 'db:commit',
  summary: 'commit migrations/current.sql as the next migration',
  usage: `npm run db:commit [-- --message TEXT]   commit migrations/current.sql as the next committed migration (graphile-migrate commit)
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { message: { type: 'string', short: 'm' } } });
    await usingDatabase(config, 'db:commit', (db) =>
      withMigrationLock(config, async () => {
        // commit migrates the database too: its roles must exist, as for db:migrate.
        await ensureRoles(db, config);
        await gm.commit(migrateSettings(config, db), values.message);
      }),
    );
  },
};

export const dbUncommit: Command = {
  name: 'db:uncommit',
  summary: 'move the last committed migration back into migrations/current.sql',
  usage: `npm run db:uncommit   move the last committed migration back into migrations/current.sql (graphile-migrate uncommit)
`,
  async run(config) {
    await usingDatabase(config, 'db:uncommit', (db) => withMigrationLock(config, () => gm.uncommit(migrateSettings(config, db))));
  },
};
