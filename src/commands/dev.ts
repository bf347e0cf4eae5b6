import { watchCurrent } from '../database/migrations.ts';
import { claimCurrentSql } from '../database/current-owner.ts';
import { SchemaReloader } from '../graphql/schema-reload.ts';
import { startGateway } from '../http/start.ts';
import { mountAdminPage } from '../admin/routes.ts';
import { untilSignal, type Command } from './command.ts';

export const dev: Command = {
  name: 'dev',
  summary: 'serve GraphQL, applying migrations/current.sql on every save',
  usage: `npm run dev   the gateway, plus migrations/current.sql applied on every save and the schema rebuilt after each successful run
  One process applies current.sql on every save to a database: with \`npm run db:watch\` (or another
  dev) already doing so, it says which process does and exits 1.
`,
  async run(config) {
    // Before the gateway starts: a second watcher of current.sql says who the first is, at once.
    const claim = await claimCurrentSql(config, 'npm run dev');
    try {
      const reloader = new SchemaReloader();
      const running = await startGateway(config, { reloader, addRoutes: mountAdminPage });
      const watcher = watchCurrent(config, running.db, { onApplied: () => reloader.reload() });
      await watcher.first;
      process.stderr.write(`Sheratan Store (dev) is serving ${running.url}/graphql; editing migrations/current.sql updates the schema\n`);
      await untilSignal(async (signal) => {
        process.stderr.write(`Sheratan Store (dev): ${signal}, stopping\n`);
        watcher.stop();
        await running.stop().catch((err: unknown) => {
          process.stderr.write(`Sheratan Store (dev): the shutdown failed: ${String(err)}\n`);
          process.exitCode = 1;
        });
      });
    } finally {
      await claim.release();
    }
    process.stderr.write('Sheratan Store (dev) stopped\n');
  },
};
