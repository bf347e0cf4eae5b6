import { migrateSettings, migrationStatus } from '../database/migrations.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbStatus: Command = {
  name: 'db:status',
  summary: 'show pending migrations and uncommitted changes',
  usage: `npm run db:status   pending committed migrations and whether current.sql has changes

  Exits with graphile-migrate's bitmap: 1 migrations pending, 2 uncommitted changes in current.sql.
`,
  async run(config) {
    return usingDatabase(config, 'db:status', async (db) => {
      const status = await migrationStatus(migrateSettings(config, db));
      process.stdout.write(status.report);
      return status.exitCode;
    });
  },
};
