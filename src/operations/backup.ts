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
import { effectiveJwtSecret } from '../database/jwt-secret.ts';
import { withProgress, type Progress } from './progress.ts';

/**
 * Runs a PostgreSQL client tool; `stdin` is fed to it (in pieces, telling
 * `onBytes` how much went in), `stdout` (a path) receives its output, created
 * mode 0600 (`onBytes` hears how much came out).
 */
function run(command: string, args: string[], io: { stdin?: string; stdout?: string; onBytes?: (n: number) => void } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = io.stdout ? createWriteStream(io.stdout, { mode: 0o600 }) : null;
    // Whether the file is written through may be known before or after the
    // process's exit: wait for both, however they come.
    const written = out ? new Promise<void>((done) => out.once('close', () => done())) : Promise.resolve();
    const child = spawn(command, args, { stdio: [io.stdin === undefined ? 'ignore' : 'pipe', out ? 'pipe' : 'inherit', 'inherit'] });
    let bytes = 0;
    if (out) {
      child.stdout!.pipe(out);
      if (io.onBytes) child.stdout!.on('data', (d: Buffer) => io.onBytes!((bytes += d.length)));
    }
    if (io.stdin !== undefined) void feed(child.stdin!, io.stdin, io.onBytes);
    child.once('error', (err) => reject(new Error(`could not run ${command} (${err.message}); install the PostgreSQL client tools`, { cause: err })));
    child.once('exit', (code) => {
      void written.then(() => (code === 0 ? resolve() : reject(new Error(`${command} exited with code ${code}`))));
    });
  });
}

/** Writes `text` to `stdin` a megabyte at a time, as fast as the reader takes it, then ends it. */
async function feed(stdin: NodeJS.WritableStream, text: string, onBytes?: (n: number) => void): Promise<void> {
  const data = Buffer.from(text);
  const step = 1 << 20;
  // A reader that exits early (psql on an error) closes the pipe: its exit code tells what happened.
  stdin.on('error', () => undefined);
  for (let at = 0; at < data.length; at += step) {
    const piece = data.subarray(at, at + step);
    if (!stdin.write(piece)) await new Promise((r) => stdin.once('drain', r));
    onBytes?.(Math.min(data.length, at + step));
  }
  stdin.end();
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

/**
 * Writes a plain SQL dump of the database to `file`; returns its size in
 * bytes. `progress` hears the bytes written (a server's pg_dump streams; the
 * embedded engine's dump arrives whole, so there only the time shows).
 */
export async function backup(config: Config, db: Database, file: string, progress?: Progress): Promise<number> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const dumping = (async () => {
    if (db.backend === 'embedded') {
      const dump = await withPgClient(db.ownerUrl, async (client) => (await client.query<{ dump: string }>('SHERATAN DUMP')).rows[0]!.dump);
      await writeFile(file, dump, { mode: 0o600 });
      progress?.update(Buffer.byteLength(dump));
    } else {
      // Written mode 0600 like the embedded dump: it holds every tenant's data.
      await rm(file, { force: true });
      await run('pg_dump', ['--dbname', db.ownerUrl, '--format=plain', '--no-owner'], { stdout: file, onBytes: (n) => progress?.update(n) });
    }
  })();
  await (progress ? withProgress(progress, dumping) : dumping);
  const secret = effectiveJwtSecret(config);
  if (secret) await appendFile(file, `\n-- sheratan: jwt-secret fingerprint ${fingerprint(secret)}\n`);
  return (await stat(file)).size;
}

/**
 * Restores a dump made by `backup` into an empty database (roles are created
 * first). Returns a warning when the tokens of the database the dump came from
 * will not verify here (another JWT secret), with how to keep them.
 */
export async function restore(config: Config, db: Database, file: string, progress?: Progress): Promise<string | null> {
  const sql = await readFile(file, 'utf8');
  const occupied = await withPgClient(
    db.ownerUrl,
    async (client) => (await client.query<{ found: boolean }>("select to_regclass('sheratan.documents') is not null as found")).rows[0]!.found,
  );
  if (occupied) {
    throw new Error(
      'restore needs an empty database, and this one already has the sheratan schema (in development: npm run db:reset -- --erase, then drop what the migrations created, or restore into a new SHERATAN_DATA_DIR)',
    );
  }
  // On a server this needs the bootstrap done (roles, the extension) and
  // says so otherwise; everything restored is owned by the owner that restores it.
  await ensureRoles(db, config);
  // A server's psql is fed the dump in pieces (bytes of a known total: an ETA); the embedded engine takes it in one statement.
  const input = db.backend === 'embedded' ? sql : withoutExtensionStatements(sql);
  progress?.update(0, { total: Buffer.byteLength(input) });
  const loading =
    db.backend === 'embedded'
      ? withPgClient(db.ownerUrl, (client) => client.query(sql)).then(() => undefined)
      : run('psql', ['--dbname', db.ownerUrl, '--no-psqlrc', '--single-transaction', '-v', 'ON_ERROR_STOP=1', '--quiet', '--output=/dev/null'], {
          stdin: input,
          onBytes: (n) => progress?.update(n),
        });
  await (progress ? withProgress(progress, loading) : loading);
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
