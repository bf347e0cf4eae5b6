import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { backup as writeBackup, defaultBackupFile, restore as readBackup } from '../operations/backup.ts';
import { usingDatabase, type Command } from './command.ts';
import { Progress, progressLines } from '../operations/progress.ts';

export const backup: Command = {
  name: 'backup',
  summary: 'dump the database to a file',
  usage: `npm run backup [-- --out FILE]   dump the database (schema and data) to FILE (default: BACKUP_DIR/sheratan-backup-<time>.sql)
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { out: { type: 'string', short: 'o' } } });
    const file = values.out ?? defaultBackupFile(config);
    const bytes = await usingDatabase(config, 'backup', (db) =>
      writeBackup(config, db, file, new Progress('backup', { unit: 'bytes', lines: progressLines(config.logLevel) })),
    );
    process.stdout.write(`wrote ${file} (${bytes} bytes)\n`);
  },
};

export const restore: Command = {
  name: 'restore',
  summary: 'load a dump made by backup',
  usage: `npm run restore -- FILE   load FILE, a dump made by npm run backup, into the database
`,
  async run(config, args) {
    const { positionals } = parseArgs({ args, allowPositionals: true });
    const file = positionals[0];
    if (!file) throw new ConfigError('usage: npm run restore -- FILE (a dump made by npm run backup)');
    const warning = await usingDatabase(config, 'restore', (db) =>
      readBackup(config, db, file, new Progress('restore', { unit: 'bytes', lines: progressLines(config.logLevel) })),
    );
    process.stdout.write(`restored ${file}\n`);
    if (warning) process.stderr.write(`note: ${warning}\n`);
  },
};
