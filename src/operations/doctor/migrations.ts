// Every committed migration applied (graphile-migrate's status, on its own connection).
import * as gm from 'graphile-migrate';
import { migrateSettings } from '../../database/migrations.ts';
import type { DoctorCheck } from './types.ts';

export const migrations: DoctorCheck = {
  name: 'migrations',
  afterConnection: true,
  async run({ config, db }) {
    try {
      const pending = (await gm.status(migrateSettings(config, db))).remainingMigrations ?? [];
      return pending.length
        ? {
            name: 'migrations',
            status: 'fail',
            detail: `${pending.length} committed migration(s) not applied: ${pending.join(', ')}`,
            fix: 'npm run db:migrate',
          }
        : { name: 'migrations', status: 'ok', detail: 'all committed migrations applied' };
    } catch (err) {
      return { name: 'migrations', status: 'fail', detail: (err as Error).message, fix: 'npm run db:migrate' };
    }
  },
};
