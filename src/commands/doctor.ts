import { parseArgs } from 'node:util';
import { formatChecks, runDoctor } from '../operations/doctor.ts';
import { usingDatabase, type Command } from './command.ts';

export const doctor: Command = {
  name: 'doctor',
  summary: 'check the configuration, the database and the index',
  usage: `npm run doctor [-- --json]   check the configuration, the connection, migrations, roles, the embedding column and the ANN index

  Exits 1 when a check fails. --json prints { ok, checks } instead.
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
    const checks = await usingDatabase(config, 'doctor', (db) => runDoctor(config, db));
    const ok = checks.every((c) => c.status !== 'fail');
    process.stdout.write(values.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : `${formatChecks(checks)}\n`);
    return ok ? 0 : 1;
  },
};
