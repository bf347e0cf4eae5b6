import * as gm from 'graphile-migrate';
import { migrateSettings, migrateToHead, withMigrationLock } from '../database/migrations.ts';
import { backup, defaultBackupFile } from '../operations/backup.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbMigrate: Command = {
  name: 'db:migrate',
  summary: 'apply the committed migrations',
  usage: `npm run db:migrate   apply the committed migrations (migrations/committed/) to the database

  BACKUP_BEFORE_MIGRATE=true writes a backup first when any are pending.
`,
  async run(config) {
    await withMigrationLock(config, () =>
      usingDatabase(config, 'db:migrate', async (db) => {
        if (config.backupBeforeMigrate) {
          const pending = (await gm.status(migrateSettings(config, db))).remainingMigrations ?? [];
          if (pending.length) {
            const file = defaultBackupFile(config, 'before-migrate');
            const bytes = await backup(config, db, file);
            process.stderr.write(`BACKUP_BEFORE_MIGRATE: wrote ${file} (${bytes} bytes) before applying ${pending.length} migration(s)\n`);
          }
        }
        await migrateToHead(config, db);
      }),
    );
  },
};
