// Plain SQL backups: pg_dump on a server, PGlite's pg_dump (WASM, inside the
// embedded engine) otherwise; restores into an empty database.
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.ts';
import { withPgClient, type Database } from './database.ts';
import { ensureRoles } from './migrations.ts';

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (err) => reject(new Error(`could not run ${command} (${err.message}); install the PostgreSQL client tools`, { cause: err })));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with code ${code}`))));
  });
}

/** Writes a plain SQL dump of the database to `file`; returns its size in bytes. */
export async function backup(db: Database, file: string): Promise<number> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  if (db.mode === 'embedded') {
    const dump = await withPgClient(db.ownerUrl, async (client) => (await client.query<{ dump: string }>('SHERATAN DUMP')).rows[0]!.dump);
    await writeFile(file, dump, { mode: 0o600 });
  } else {
    await run('pg_dump', ['--dbname', db.ownerUrl, '--format=plain', '--no-owner', '--file', file]);
  }
  return (await stat(file)).size;
}

/** Restores a dump made by `backup` into an empty database (roles are created first). */
export async function restore(config: Config, db: Database, file: string): Promise<void> {
  const sql = await readFile(file, 'utf8');
  const occupied = await withPgClient(db.ownerUrl, async (client) =>
    (await client.query<{ found: boolean }>("select to_regclass('sheratan.documents') is not null as found")).rows[0]!.found,
  );
  if (occupied) {
    throw new Error('restore needs an empty database, and this one already has the sheratan schema (in development: npm run db:reset -- --erase, then drop what the migrations created, or restore into a new SHERATAN_DATA_DIR)');
  }
  await ensureRoles(db, config);
  if (db.mode === 'embedded') {
    await withPgClient(db.ownerUrl, (client) => client.query(sql));
  } else {
    await run('psql', ['--dbname', db.ownerUrl, '--no-psqlrc', '--single-transaction', '-v', 'ON_ERROR_STOP=1', '--quiet', '--file', file]);
  }
}

export function defaultBackupFile(config: Config, label = 'backup'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return path.join(config.backupDir, `sheratan-${label}-${stamp}.sql`);
}
