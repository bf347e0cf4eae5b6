// One process at a time applies migrations/current.sql on every save to a
// database (issue 32): `npm run dev` and `npm run db:watch` both did, so the
// one that came second said "current.sql unchanged, skipped" while the other
// applied the change. The first claims the database; a second is refused in
// one line naming the holder and its process, and exits 1 (it does not wait:
// a watcher that sat silent behind another would be the same confusion).
// The claim ends with its holder, however it ends:
// - embedded: a lock file in the data directory (`current.lock`, lock-file.ts,
//   as the engine's own lock): JSON naming the holder; once that process is
//   gone the lock is stale and the next claim takes it over;
// - server: a session advisory lock, held on a connection kept open for the
//   watcher's life (its application_name names the holder); the server
//   releases it when that connection ends, i.e. when the process does.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { releaseLockFile, tryLockFile } from '@sheratan/pglite-server';

/** The advisory lock's two keys on a server (arbitrary: "sheratan", "current.sql"). */
const LOCK_KEYS = [734_520, 1] as const;

/** Who applies current.sql on every save: the command as typed. */
export type CurrentSqlWatcher = 'npm run dev' | 'npm run db:watch';

interface Holder {
  pid: number;
  purpose: string;
  since: string;
}

export class CurrentSqlInUseError extends Error {}

export interface CurrentSqlClaim {
  release(): Promise<void>;
}

export const currentLockFile = (dataDir: string): string => path.join(dataDir, 'current.lock');

function refusal(purpose: CurrentSqlWatcher, holder: string): CurrentSqlInUseError {
  return new CurrentSqlInUseError(
    `${purpose}: migrations/current.sql is already applied on every save to this database by ${holder}; ` +
      'one process applies it at a time: stop that one first, or keep using it',
  );
}

/** Claims current.sql for `purpose` on the configured database, or throws CurrentSqlInUseError naming the holder. */
export async function claimCurrentSql(config: Config, purpose: CurrentSqlWatcher): Promise<CurrentSqlClaim> {
  const me: Holder = { pid: process.pid, purpose, since: new Date().toISOString() };
  if (!config.databaseUrl) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const file = currentLockFile(config.dataDir);
    const holder = tryLockFile<Holder>(file, me);
    if (holder) throw refusal(purpose, `process ${holder.pid} (${holder.purpose}, since ${holder.since})`);
    return { release: async () => releaseLockFile(file) };
  }
  const client = new pg.Client({ connectionString: config.databaseUrl, application_name: `sheratan ${purpose} pid ${process.pid}` });
  // A dropped connection ends the claim with it; the watcher carries on (a later claim is then allowed).
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ claimed: boolean }>('select pg_try_advisory_lock($1, $2) as claimed', [...LOCK_KEYS]);
    if (!rows[0]!.claimed) {
      // Who: its connection's application_name (sheratan <command> pid <pid>), or its server process.
      const held = await client.query<{ name: string | null; pid: number }>(
        `select a.application_name as name, a.pid
           from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted and l.classid = $1 and l.objid = $2 and l.objsubid = 2
            and l.database = (select oid from pg_database where datname = current_database())`,
        [...LOCK_KEYS],
      );
      const row = held.rows[0];
      const named = /^sheratan (.+) pid (\d+)$/.exec(row?.name ?? '');
      throw refusal(purpose, named ? `process ${named[2]} (${named[1]})` : `another session${row ? ` (server process ${row.pid})` : ''}`);
    }
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return { release: () => client.end().catch(() => undefined) };
}
