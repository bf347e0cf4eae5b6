// The server under the store: PostgreSQL 14 or newer, and pgvector 0.8 or newer created in the database.
import { pgvectorVersionProblem } from '../../database/vector-column.ts';
import type { Check, DoctorCheck } from './types.ts';

/** The server version line for what the server reports (server_version, server_version_num). */
export function serverVersionResult(version: string, versionNum: number, embedded: boolean): Check {
  return versionNum >= 140000
    ? { name: 'server version', status: 'ok', detail: `PostgreSQL ${version}${embedded ? ' (embedded PGlite)' : ''}` }
    : { name: 'server version', status: 'fail', detail: `PostgreSQL ${version}`, fix: 'Sheratan needs PostgreSQL 14 or newer (16 is the production target)' };
}

export const serverVersion: DoctorCheck = {
  name: 'server version',
  async run({ client, db }) {
    const version = (await client.query<{ v: string; n: string }>("select current_setting('server_version') as v, current_setting('server_version_num') as n"))
      .rows[0]!;
    return serverVersionResult(version.v, Number(version.n), db.backend === 'embedded');
  },
};

/** pgvector available on the server, created in the database, and new enough (it prints as "vector extension available", "installed" or "version"). */
export const vectorExtension: DoctorCheck = {
  name: 'vector extension',
  async run({ client }) {
    const ext = (
      await client.query<{ available: string | null; installed: string | null }>(`
        select (select default_version from pg_available_extensions where name = 'vector') as available,
               (select extversion from pg_extension where extname = 'vector') as installed`)
    ).rows[0]!;
    if (!ext.available) {
      return {
        name: 'vector extension available',
        status: 'fail',
        detail: 'pgvector is not installed on this server (could not open extension control file)',
        fix: 'install pgvector for your PostgreSQL version (Debian/Ubuntu: apt-get install postgresql-16-pgvector; macOS: brew install pgvector), restart PostgreSQL, then npm run db:migrate',
      };
    }
    if (!ext.installed) {
      return {
        name: 'vector extension installed',
        status: 'fail',
        detail: `pgvector ${ext.available} is available but not created in this database`,
        fix: 'npm run db:migrate (it runs CREATE EXTENSION vector)',
      };
    }
    const problem = pgvectorVersionProblem(ext.installed);
    return problem
      ? { name: 'vector extension version', status: 'fail', detail: problem, fix: 'install pgvector 0.8 or newer, then ALTER EXTENSION vector UPDATE' }
      : { name: 'vector extension version', status: 'ok', detail: `pgvector ${ext.installed} (HNSW and iterative index scans)` };
  },
};
