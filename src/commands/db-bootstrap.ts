import { parseArgs } from 'node:util';
import { bootstrapServer } from '../operations/bootstrap.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbBootstrap: Command = {
  name: 'db:bootstrap',
  summary: 'create the roles and the database on a PostgreSQL server (ROOT_DATABASE_URL)',
  usage: `npm run db:bootstrap [-- --no-createdb] [--reset-password] [--dry-run]
                  as ROOT_DATABASE_URL (a superuser): create the roles, the owner and the database;
                  it says what it will do before it does anything

  --no-createdb      do not give the owner CREATEDB (production: neither db:commit's shadow database nor db:reset is needed)
  --reset-password   set the owner's and the authenticator's passwords from DATABASE_URL and AUTH_DATABASE_URL even when
                     they have one (roles are cluster-wide: without it an existing password is never changed)
  --dry-run          say what it would do, change nothing
`,
  async run(config, args) {
    const { values } = parseArgs({
      args,
      options: { 'no-createdb': { type: 'boolean' }, 'reset-password': { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
    });
    const dryRun = values['dry-run'] === true;
    const done = await usingDatabase(config, 'db:bootstrap', (db) =>
      bootstrapServer(config, db, {
        createdb: !values['no-createdb'],
        resetPassword: values['reset-password'] === true,
        dryRun,
        onPlan: (steps) => process.stdout.write(`db:bootstrap ${dryRun ? 'would' : 'will'}:\n${steps.map((s) => `  - ${s}`).join('\n')}\n`),
      }),
    );
    if (dryRun) {
      process.stdout.write('nothing was changed (--dry-run)\n');
      return;
    }
    process.stdout.write(`${done.map((line) => (line.startsWith('! ') ? line : `✓ ${line}`)).join('\n')}\n`);
    if (done.some((line) => line.startsWith('! '))) {
      process.stdout.write('db:bootstrap finished with the problem above: the gateway cannot log in until it is solved\n');
      return 1;
    }
    process.stdout.write('next: npm run db:migrate (as the owner; ROOT_DATABASE_URL is not needed any more)\n');
  },
};
