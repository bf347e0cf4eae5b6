import { parseArgs } from 'node:util';
import { bootstrapServer } from '../operations/bootstrap.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbBootstrap: Command = {
  name: 'db:bootstrap',
  summary: 'create the roles and the database on a PostgreSQL server (ROOT_DATABASE_URL)',
  usage: `npm run db:bootstrap [-- --no-createdb]   as ROOT_DATABASE_URL (a superuser): create the roles, the owner and the database

  --no-createdb   the database exists already (created by your provider)
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { 'no-createdb': { type: 'boolean' } } });
    const done = await usingDatabase(config, 'db:bootstrap', (db) => bootstrapServer(config, db, { createdb: !values['no-createdb'] }));
    process.stdout.write(`${done.map((line) => `✓ ${line}`).join('\n')}\nnext: npm run db:migrate (as the owner; ROOT_DATABASE_URL is not needed any more)\n`);
  },
};
