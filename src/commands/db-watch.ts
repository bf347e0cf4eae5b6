import { parseArgs } from 'node:util';
import * as gm from 'graphile-migrate';
import { ensureRoles, migrateSettings, migrateToHead, watchCurrent } from '../database/migrations.ts';
import { claimCurrentSql } from '../database/current-owner.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbWatch: Command = {
  name: 'db:watch',
  summary: 'apply migrations/current.sql on every save',
  usage: `npm run db:watch [-- --once]   apply migrations/current.sql now and on every save (graphile-migrate watch)

  --once   apply it once and exit (1 if it fails)
  One process applies current.sql on every save to a database: with \`npm run dev\` (or another
  db:watch) already doing so, it says which process does and exits 1.
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { once: { type: 'boolean' } } });
    const once = values.once ?? false;
    // Before the database is opened: a second watcher says who the first is, at once.
    const claim = once ? null : await claimCurrentSql(config, 'npm run db:watch');
    await usingDatabase(config, 'db:watch', async (db) => {
      if (db.backend === 'embedded') {
        await migrateToHead(config, db);
        const watcher = watchCurrent(config, db, { once });
        if (!(await watcher.first) && once) throw new Error('current.sql failed');
      } else {
        await ensureRoles(db, config);
        await gm.watch(migrateSettings(config, db), once);
      }
      if (!once) await new Promise<never>(() => undefined); // runs until interrupted
    }).finally(() => claim?.release());
  },
};
