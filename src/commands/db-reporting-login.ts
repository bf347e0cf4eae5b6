import { parseArgs } from 'node:util';
import { READONLY_ROLE } from '../config/roles.ts';
import { createReportingLogin, validateReportingLogin } from '../operations/reporting-login.ts';
import { usingDatabase, type Command } from './command.ts';

export const dbReportingLogin: Command = {
  name: 'db:reporting-login',
  summary: 'create a SQL login that reads one tenant only',
  usage: `npm run db:reporting-login -- --name LOGIN --tenant TENANT --password PASSWORD
                    a login for reporting tools that reads TENANT's rows only, as ${READONLY_ROLE}
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { name: { type: 'string' }, tenant: { type: 'string' }, password: { type: 'string' } } });
    const login = validateReportingLogin(values);
    await usingDatabase(config, 'db:reporting-login', (db) => createReportingLogin(config, db, login));
    process.stdout.write(
      `login ${login.name} reads tenant ${login.tenant} only (as ${READONLY_ROLE}); ` +
        `connect with the owner's connection string, user ${login.name} and its password\n`,
    );
  },
};
