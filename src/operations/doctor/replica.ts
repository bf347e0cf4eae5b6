// The read replica READ_DATABASE_URL names (where /reporting/graphql reads):
// reached, a standby, and how far behind the primary (replicaLag).
import { withPgClient } from '../../database/connect.ts';
import { replicaLag } from '../../database/replica.ts';
import type { DoctorCheck } from './types.ts';

const NAME = 'read replica';

export const readReplica: DoctorCheck = {
  name: NAME,
  async run({ config, db, client }) {
    if (!config.readDatabaseUrl) return [];
    let state;
    try {
      state = await withPgClient(db.readUrl, (replica) => replicaLag(client, replica));
    } catch (err) {
      return {
        name: NAME,
        status: 'fail',
        detail: `READ_DATABASE_URL: ${(err as Error).message}`,
        fix: 'check READ_DATABASE_URL and that the replica runs; meanwhile /reporting/graphql answers DATABASE_UNAVAILABLE',
      };
    }
    if (!state.standby) {
      return {
        name: NAME,
        status: 'warn',
        detail: 'READ_DATABASE_URL is not a standby (pg_is_in_recovery() is false): the reporting endpoint reads a primary',
        fix: 'point READ_DATABASE_URL at a streaming replica (pg_basebackup -R), or unset it',
      };
    }
    return { name: NAME, status: 'ok', detail: `a standby, ${state.lagBytes} bytes of WAL behind the primary` };
  },
};
