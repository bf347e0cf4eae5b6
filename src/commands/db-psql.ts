import { spawn } from 'node:child_process';
import { usingDatabase, type Command } from './command.ts';

export const dbPsql: Command = {
  name: 'db:psql',
  summary: 'psql on the database, as the owner',
  usage: `npm run db:psql [-- PSQL ARGUMENTS]   psql on the database as the owner (serving the embedded one while it runs)
`,
  async run(config, args) {
    return usingDatabase(config, 'db:psql', async (db) => {
      const child = spawn('psql', [db.ownerUrl, ...args], { stdio: 'inherit' });
      return new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(new Error(`could not run psql (${err.message}); install the PostgreSQL client`, { cause: err })));
        child.once('exit', (code) => resolve(code ?? 1));
      });
    });
  },
};
