// Plain SQL backups: pg_dump on a server, PGlite's pg_dump (WASM, inside the
// embedded engine) otherwise; restores into an empty database.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config/config.ts';
import { withPgClient, type Database } from '../database/connect.ts';
import { ensureRoles } from '../database/migrations.ts';
import { effectiveJwtSecret } from '../config/jwt-secret.ts';

/** Runs a PostgreSQL client tool; `stdin` is fed to it, `stdout` (a path) receives its output, created mode 0600. */
function run(command: string, args: string[], io: { stdin?: string; stdout?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = io.stdout ? createWriteStream(io.stdout, { mode: 0o600 }) : null;
    // Whether the file is written through may be known before or after the
    // process's exit: wait for both, however they come.
    const written = out ? new Promise<void>((done) => out.once('close', () => done())) : Promise.resolve();
    const child = spawn(command, args, { stdio: [io.stdin === undefined ? 'ignore' : 'pipe', out ? 'pipe' : 'inherit', 'inherit'] });
    if (out) child.stdout!.pipe(out);
    if (io.stdin !== undefined) child.stdin!.end(io.stdin);
    child.once('error', (err) => reject(new Error(`could not run ${command} (${err.message}); install the PostgreSQL client tools`, { cause: err })));
    child.once('exit', (code) => {
      void written.then(() => (code === 0 ? resolve() : reject(new Error(`${command} exited with code ${code}`))));
    });
  });
}

/**
 * A server dump restored by the owner: the extension was created by
 * db:bootstrap and belongs to the superuser, so its CREATE and COMMENT lines
 * (which only the extension's owner may run) are left to it.
 */
export function withoutExtensionStatements(dump: string): string {
  return dump.replace(/^(CREATE EXTENSION IF NOT EXISTS vector\b[^\n]*|COMMENT ON EXTENSION vector IS [^\n]*);\n/gm, '');
}

/**
 * Which JWT secret signed the tokens of the database a dump came from, as a
 * fingerprint (a hash prefix: the secret itself is never written). A restore
 * compares it with its own, since tokens do not survive a change of secret.
 */
const SECRET_LINE = /^-- sheratan: jwt-secret fingerprint ([0-9a-f]{16})$/m;
const fingerprint = (secret: string): string => createHash('sha256').update(secret).digest('hex').slice(0, 16);

/** Writes a plain SQL dump of the database to `file`; returns its size in bytes. */
export async function backup(config: Config, db: Database, file: string): Promise<number> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  if (db.backend === 'embedded') {
    const dump = await withPgClient(db.ownerUrl, async (client) => (await client.query<{ dump: string }>('SHERATAN DUMP')).rows[0]!.dump);
    await writeFile(file, dump, { mode: 0o600 });
  } else {
    // Written mode 0600 like the embedded dump: it holds every tenant's data.
    await rm(file, { force: true });
    await run('pg_dump', ['--dbname', db.ownerUrl, '--format=plain', '--no-owner'], { stdout: file });
  }
  const secret = effectiveJwtSecret(config);
  if (secret) await appendFile(file, `\n-- sheratan: jwt-secret fingerprint ${fingerprint(secret)}\n`);
  return (await stat(file)).size;
}

/**
 * Restores a dump made by `backup` into an empty database (roles are created
 * first). Returns a warning when the tokens of the database the dump came from
 * will not verify here (another JWT secret), with how to keep them.
 */
export async function restore(config: Config, db: Database, file: string): Promise<string | null> {
  const sql = await readFile(file, 'utf8');
  const occupied = await withPgClient(db.ownerUrl, async (client) =>
    (await client.query<{ found: boolean }>("select to_regclass('sheratan.documents') is not null as found")).rows[0]!.found,
  );
  if (occupied) {
    throw new Error('restore needs an empty database, and this one already has the sheratan schema (in development: npm run db:reset -- --erase, then drop what the migrations created, or restore into a new SHERATAN_DATA_DIR)');
  }
  // On a server this needs the bootstrap done (roles, the extension) and
  // says so otherwise; everything restored is owned by the owner that restores it.
  await ensureRoles(db, config);
  if (db.backend === 'embedded') {
    await withPgClient(db.ownerUrl, (client) => client.query(sql));
  } else {
    await run('psql', ['--dbname', db.ownerUrl, '--no-psqlrc', '--single-transaction', '-v', 'ON_ERROR_STOP=1', '--quiet', '--output=/dev/null'], { stdin: withoutExtensionStatements(sql) });
  }
  const theirs = SECRET_LINE.exec(sql)?.[1];
  const secret = effectiveJwtSecret(config);
  if (!theirs || (secret && fingerprint(secret) === theirs)) return null;
  return (
    `the backup comes from a database whose tokens were signed with another JWT secret (fingerprint ${theirs}, here ${secret ? fingerprint(secret) : 'none'}): ` +
    'tokens issued there are refused here. To keep them, ' +
    (db.backend === 'embedded'
      ? `copy the old data directory's jwt-secret file over ${path.join(config.dataDir, 'jwt-secret')} (or set JWT_SECRET to it) before starting the gateway`
      : 'set JWT_SECRET to the old secret') +
    '; otherwise issue new tokens'
  );
}

export function defaultBackupFile(config: Config, label = 'backup'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return path.join(config.backupDir, `sheratan-${label}-${stamp}.sql`);
}
