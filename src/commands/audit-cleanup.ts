import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { withPgClient } from '../database/connect.ts';
import { usingDatabase, type Command } from './command.ts';

export const auditCleanup: Command = {
  name: 'audit:cleanup',
  summary: 'delete audit log rows older than --days',
  usage: `npm run audit:cleanup [-- --days 90]   delete the audit trail's rows older than DAYS days (default 90)
`,
  async run(config, args) {
    const { values } = parseArgs({ args, options: { days: { type: 'string', default: '90' } } });
    const days = Number(values.days);
    if (!Number.isInteger(days) || days < 0) throw new ConfigError(`--days must be a whole number of days, not "${values.days}"`);
    const deleted = await usingDatabase(config, 'audit:cleanup', (db) =>
      withPgClient(db.ownerUrl, async (client) => {
        const { rows } = await client.query<{ deleted: string }>('select sheratan_private.cleanup_audit_logs($1) as deleted', [days]);
        return rows[0]!.deleted;
      }),
    );
    process.stdout.write(`deleted ${deleted} audit log row(s) older than ${days} days\n`);
  },
};
