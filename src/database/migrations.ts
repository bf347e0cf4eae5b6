// graphile-migrate, driven with connection strings for either run mode.
import { readFileSync } from 'node:fs';
import { unwatchFile, watchFile } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import JSON5 from 'json5';
import * as gm from 'graphile-migrate';
import { Logger } from '@graphile/logger';
import { generatePlaceholderReplacement, getAllMigrations, runStringMigration } from 'graphile-migrate/dist/migration.js';
import { sqlStatements } from '@sheratan/pglite-server';
import { releaseLockFile, tryLockFile } from '@sheratan/pglite-server';
import { ensureIndexKind } from './ann-index.ts';
import { executeActions } from 'graphile-migrate/dist/actions.js';
import { parseSettings } from 'graphile-migrate/dist/settings.js';
import { getCurrentMigrationLocation, readCurrentMigration } from 'graphile-migrate/dist/current.js';
import { isNoTransactionDefined } from 'graphile-migrate/dist/header.js';
import pgMinify from 'pg-minify';
import type { PoolClient } from 'pg';
import type { Config } from '../config/config.ts';
import { DATABASE_ROLES, databaseName, onDatabase, privilegedUrl, withPgClient, type Database } from './connect.ts';
import { projectRoot } from '../config/paths.ts';
import { ANONYMOUS_ROLE, APP_ROLE, AUTHENTICATOR_ROLE, READONLY_ROLE } from '../config/roles.ts';
import { log } from '../config/log.ts';

/**
 * graphile-migrate's messages as the gateway's structured log lines (the CLI
 * commands keep graphile-migrate's own console output).
 */
export const structuredMigrateLogger = new Logger(() => (level, message) => {
  // Its messages name it already ("graphile-migrate: …", "graphile-migrate[shadow]: …").
  const text = /^graphile-migrate\b/.test(message) ? message : `graphile-migrate: ${message}`;
  log(level === 'error' ? 'error' : level === 'warning' ? 'warn' : level === 'debug' ? 'debug' : 'info', text);
});

export function migrateSettings(config: Config, db: Database, logger?: Logger): gm.Settings {
  const rc = JSON5.parse(readFileSync(path.join(projectRoot, '.gmrc'), 'utf8')) as gm.Settings;
  return {
    ...rc,
    ...(logger ? { logger } : {}),
    migrationsFolder: path.resolve(projectRoot, rc.migrationsFolder ?? 'migrations'),
    connectionString: db.ownerUrl,
    shadowConnectionString: db.shadowUrl,
    rootConnectionString: db.rootUrl,
    placeholders: { ...rc.placeholders, ...migrationPlaceholders(config) },
  };
}

/** pgvector's HNSW limit for vector columns (halfvec: 4,000). */
export const HNSW_VECTOR_MAX_DIMENSION = 2000;

/**
 * The values of .gmrc's placeholders. The first migration creates the column
 * as vector(:VECTOR_DIMENSION) with an HNSW index, which pgvector refuses above
 * 2,000 dimensions, and committed migrations do not change: it gets at most
 * 2,000, and migration 000011 sets the real dimension, :EMBEDDING_DIMENSION
 * (indexing it as halfvec above 2,000). afterReset.sql and the migrations
 * from 000014 on name the roles by placeholder too.
 */
export function migrationPlaceholders(config: Pick<Config, 'vectorDimension' | 'textSearchConfig'>): Record<string, string> {
  return {
    ':VECTOR_DIMENSION': String(Math.min(config.vectorDimension, HNSW_VECTOR_MAX_DIMENSION)),
    ':EMBEDDING_DIMENSION': String(config.vectorDimension),
    ':TEXT_SEARCH_CONFIG': config.textSearchConfig,
    // The roles (graphile/starter's names for them), named once in config/roles.ts.
    ':DATABASE_AUTHENTICATOR': AUTHENTICATOR_ROLE,
    ':DATABASE_VISITOR': APP_ROLE,
    ':DATABASE_READONLY': READONLY_ROLE,
    ':DATABASE_ANONYMOUS': ANONYMOUS_ROLE,
  };
}

/**
 * Runs migrations/afterReset.sql before migrating: committed migrations grant
 * to the API roles, and on a fresh database nothing has run it yet. It runs as
 * the root user when there is one (embedded, or ROOT_DATABASE_URL), otherwise
 * as the owner, for whom it is a no-op once `db:bootstrap` has run (and an
 * error naming the bootstrap when it has not). It never sets passwords: roles
 * are cluster-wide, and two databases on one cluster must not reset each
 * other's authenticator password; `db:bootstrap` sets it, explicitly.
 */
export async function ensureRoles(db: Database, config: Config): Promise<void> {
  const replace = generatePlaceholderReplacement(await parseSettings(migrateSettings(config, db)), { database: databaseName(db.ownerUrl) });
  // .gmrc's afterReset files, with its placeholders, as graphile-migrate runs them after a reset:
  // the store's roles, then the names the committed migrations grant to (committed-roles.sql).
  for (const file of ['afterReset.sql', 'committed-roles.sql']) {
    const sql = replace(readFileSync(path.join(projectRoot, 'migrations', file), 'utf8'));
    await withPgClient(privilegedUrl(config, db), (client) => client.query(sql)).catch((err: unknown) => {
      // afterReset.sql's refusal says what is missing in its message and the way out (db:bootstrap) in its hint: keep both.
      const e = err as DatabaseErrorFields;
      throw e?.hint ? Object.assign(new Error(`${e.message}\n  hint: ${e.hint}`, { cause: err }), { code: e.code }) : err;
    });
  }
}

/**
 * On a server graphile-migrate serialises migrations with an advisory lock;
 * the embedded engine is one shared session where advisory locks do not
 * exclude each other, so a lock file in the data directory does that job.
 * Re-entrant within a process. Commands take it before they open the
 * database, so a second one waits for the first to finish (and to stop the
 * engine it started) instead of attaching to an engine about to go away.
 */
export async function withMigrationLock<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  if (lockDepth > 0) return nested(fn); // this process holds it already
  if (config.databaseUrl) return withServerMigrationLock(config.databaseUrl, fn);
  await mkdir(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, 'migrate.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    const holder = tryLockFile(file, { pid: process.pid });
    if (!holder) break;
    if (Date.now() > deadline) throw new Error(`another migration (process ${holder.pid}) has held ${file} for two minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await nested(fn);
  } finally {
    releaseLockFile(file);
  }
}

/**
 * graphile-migrate's own lock is a try-lock: a second migrate running at the
 * same time fails ("Failed to get exclusive lock") instead of waiting. A
 * blocking advisory lock of our own, on a connection held for the whole
 * command, makes it wait its turn, as the embedded lock file does.
 */
async function withServerMigrationLock<T>(url: string, fn: () => Promise<T>): Promise<T> {
  return withPgClient(url, async (client) => {
    await client.query("set statement_timeout = '120s'");
    try {
      await client.query("select pg_advisory_lock(hashtext('sheratan migrations'))");
    } catch (err) {
      throw new Error(`another migration has held the migration lock for two minutes (${(err as Error).message})`, { cause: err });
    }
    try {
      return await nested(fn);
    } finally {
      await client.query("select pg_advisory_unlock(hashtext('sheratan migrations'))").catch(() => undefined);
    }
  });
}

let lockDepth = 0;
async function nested<T>(fn: () => Promise<T>): Promise<T> {
  lockDepth++;
  try {
    return await fn();
  } finally {
    lockDepth--;
  }
}

/** Applies every committed migration that has not run yet. */
export async function migrateToHead(config: Config, db: Database, logger?: Logger): Promise<void> {
  await withMigrationLock(config, async () => {
    await ensureRoles(db, config);
    let running: string | undefined;
    const settings = migrateSettings(
      config,
      db,
      observingLogger(logger ?? gm.defaultLogger, (message) => {
        running = /Running migration '([^']+)'/.exec(message)?.[1] ?? running;
      }),
    );
    try {
      // forceActions: .gmrc's afterAllMigrations (roles-map.sql) runs even when no migration did,
      // so a store whose DATABASE_ROLE_PREFIX is not the default gets its roles' grants every time.
      await gm.migrate(settings, false, true);
    } catch (err) {
      throw await explainMigrationFailure(err, settings, db, running);
    }
    // VECTOR_INDEX on a table without embeddings yet (see ensureIndexKind).
    await withPgClient(db.ownerUrl, (client) => ensureIndexKind(client, config.vectorIndex));
  });
}

/** `base`, also telling `onMessage` every message (to know which migration runs). */
function observingLogger(base: Logger, onMessage: (message: string) => void): Logger {
  return new Logger(() => (level, message, meta) => {
    onMessage(message);
    if (level === 'error') base.error(message, meta);
    else if (level === 'warning') base.warn(message, meta);
    else if (level === 'debug') base.debug(message, meta);
    else base.info(message, meta);
  });
}

interface DatabaseErrorFields {
  message: string;
  code?: string;
  position?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

/**
 * A failed migration, told the way a user can act on it: the migration file,
 * the statement and its line, then the database's own message, SQLSTATE,
 * detail and hint. The statement comes from the error's position; when the
 * database gives none (an error raised while executing, such as an index
 * refusing a dimension), the migration's statements are run again one by one
 * in a transaction that is rolled back, up to the one that fails.
 */
async function explainMigrationFailure(err: unknown, settings: gm.Settings, db: Database, file: string | undefined): Promise<Error> {
  const e = err as DatabaseErrorFields;
  if (!file || typeof e?.message !== 'string') return err as Error;
  const parsed = await parseSettings(settings);
  const migration = (await getAllMigrations(parsed)).find((m) => m.realFilename === file);
  const reason = `${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ''}${e.detail ? `\n  detail: ${e.detail}` : ''}${e.hint ? `\n  hint: ${e.hint}` : ''}${e.where ? `\n  where: ${e.where.split('\n')[0]}` : ''}`;
  if (!migration) return new Error(`migration ${file} failed: ${reason}`, { cause: err });
  const sql = generatePlaceholderReplacement(parsed, { database: databaseName(db.ownerUrl) })(migration.body);
  const statements = sqlStatements(sql);
  let failing = e.position ? statements.findLast((st) => st.offset <= Number(e.position) - 1) : undefined;
  if (!failing && !isNoTransactionDefined(sql)) {
    failing = await withPgClient(db.ownerUrl, async (client) => {
      await client.query('begin');
      try {
        for (const st of statements) {
          if (
            !(await client.query(st.text).then(
              () => true,
              () => false,
            ))
          )
            return st;
        }
        return undefined;
      } finally {
        await client.query('rollback').catch(() => undefined);
      }
    }).catch(() => undefined);
  }
  if (!failing) return new Error(`migration ${file} failed: ${reason}`, { cause: err });
  // The line in the file: the header's lines, then the statement's first line that is not a comment.
  const fileText = await readFile(migration.fullPath, 'utf8').catch(() => migration.body);
  const headerLines = fileText.slice(0, Math.max(0, fileText.indexOf(migration.body))).split('\n').length - 1;
  const lines = failing.text.split('\n');
  const leadingComments = lines.findIndex((l) => !/^\s*(--.*)?$/.test(l));
  const line = headerLines + sql.slice(0, failing.offset).split('\n').length + Math.max(0, leadingComments);
  const shown = lines.slice(Math.max(0, leadingComments));
  const excerpt =
    shown
      .slice(0, 6)
      .map((l) => `    ${l}`)
      .join('\n') + (shown.length > 6 ? '\n    …' : '');
  return new Error(`migration ${file} failed at line ${line}, in the statement:\n${excerpt}\n  ${reason}`, { cause: err });
}

/**
 * `db:status`: what graphile-migrate's status reports, with its exit code, a
 * bitmap: 1 when committed migrations are not yet applied, 2 when current.sql
 * has uncommitted changes (3: both).
 */
export async function migrationStatus(settings: gm.Settings): Promise<{ report: string; exitCode: number }> {
  const status = await gm.status(settings);
  const pending = status.remainingMigrations ?? [];
  const report =
    (pending.length
      ? `${pending.length} committed migration(s) not yet applied: ${pending.join(', ')}\n`
      : 'Database is up to date with the committed migrations.\n') + (status.hasCurrentMigration ? 'migrations/current.sql has uncommitted changes.\n' : '');
  return { report, exitCode: (pending.length ? 1 : 0) | (status.hasCurrentMigration ? 2 : 0) };
}

export interface CurrentWatcher {
  /** The result of the first run (true: applied). */
  first: Promise<boolean>;
  stop(): void;
}

/**
 * graphile-migrate's watch, on one connection. Its own holds
 * graphile_migrate.current locked in one transaction while it runs
 * current.sql on a second connection, which the embedded engine's single
 * backend cannot do (the second waits for the first: see the README). This
 * runs the same steps one after the other, under the migration lock file:
 * compile current.sql (or the current/ folder, or `file`) with the
 * placeholders; skip it when it equals, minified, what last ran (recorded in
 * graphile_migrate.current); otherwise run the `beforeCurrent` actions, run it
 * (in a transaction unless it starts with `--! no-transaction`), record it and
 * run the `afterCurrent` actions. A failed run records nothing, so the next
 * save runs again; in a transaction it rolls back completely and the last good
 * schema stays. `onApplied` hears of every run that changed something.
 */
export function watchCurrent(
  config: Config,
  db: Database,
  options: {
    file?: string;
    onApplied?: () => void;
    log?: (line: string) => void;
    once?: boolean;
    /** Settings on top of .gmrc's (e.g. beforeCurrent/afterCurrent actions). */
    settings?: Partial<gm.Settings>;
  } = {},
): CurrentWatcher {
  const settings = { ...migrateSettings(config, db), ...options.settings };
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const parsing = parseSettings(settings);
  const location = parsing.then(async (parsed) => (options.file ? null : getCurrentMigrationLocation(parsed)));
  const readBody = async (): Promise<string> => {
    const where = await location;
    return where ? readCurrentMigration(await parsing, where) : readFile(options.file!, 'utf8');
  };
  const run = async (): Promise<boolean> => {
    const parsed = await parsing;
    const started = Date.now();
    let body: string;
    try {
      body = await readBody();
    } catch (err) {
      log(`current.sql could not be read: ${(err as Error).message}`);
      return false;
    }
    const transactional = !isNoTransactionDefined(body);
    const outcome = await withMigrationLock(config, () =>
      withPgClient(db.ownerUrl, async (connection): Promise<'applied' | 'unchanged' | 'failed'> => {
        // (graphile-migrate's functions take a pool's client; this one is not released to a pool.)
        const client = Object.assign(connection, { release: () => undefined }) as unknown as PoolClient;
        const context = { database: databaseName(db.ownerUrl) };
        try {
          const { sql } = await runStringMigration(client, parsed, context, body, 'current.sql', undefined, true);
          const previous = await client.query<{ content: string }>("select content from graphile_migrate.current where filename = 'current.sql'");
          const minified = pgMinify(sql);
          const last = previous.rows[0]?.content;
          if (last !== undefined && pgMinify(last) === minified) return 'unchanged';
          await executeActions(parsed, false, parsed.beforeCurrent);
          if (minified !== '') await runStringMigration(client, parsed, context, body, 'current.sql', undefined);
          await client.query(
            `insert into graphile_migrate.current (content) values ($1)
               on conflict (filename) do update set content = excluded.content, date = excluded.date`,
            [sql],
          );
          await executeActions(parsed, false, parsed.afterCurrent);
          return 'applied';
        } catch (err) {
          const kept = transactional ? 'nothing applied; the last good schema stays' : 'it ran without a transaction: what ran before the error stays';
          log(`current.sql failed (${kept}): ${(err as Error).message}`);
          return 'failed';
        }
      }),
    );
    if (outcome === 'unchanged') log('current.sql unchanged since it last ran, skipped');
    if (outcome === 'applied') {
      log(`current.sql applied in ${Date.now() - started} ms`);
      options.onApplied?.();
    }
    return outcome !== 'failed';
  };
  let queue = run();
  const first = queue;
  let watched: string | null = null;
  if (!options.once) {
    void location.then((where) => {
      watched = where?.path ?? options.file!;
      watchFile(watched, { interval: 200 }, () => {
        queue = queue.then(run, run);
      });
    });
  }
  return { first, stop: () => watched && unwatchFile(watched) };
}

/**
 * What stops graphile-migrate's reset on a server from finishing, checked
 * before it drops anything: it drops and recreates the database on the root
 * connection (ROOT_DATABASE_URL, or the owner on the `postgres` database), then
 * runs afterReset.sql there. Returns the reason, or null when it can finish.
 */
export async function resetBlocker(config: Config, db: Database, shadow = false): Promise<string | null> {
  if (db.backend !== 'server') return null;
  const target = databaseName(shadow ? db.shadowUrl : db.ownerUrl);
  try {
    return await withPgClient(db.rootUrl, async (client) => {
      const me = (
        await client.query<{ name: string; superuser: boolean; createdb: boolean; owns: boolean | null }>(
          `select r.rolname as name, r.rolsuper as superuser, r.rolcreatedb as createdb,
                  (select pg_has_role(r.oid, d.datdba, 'usage') from pg_database d where d.datname = $1) as owns
             from pg_roles r where r.rolname = current_user`,
          [target],
        )
      ).rows[0]!;
      if (me.superuser) return null;
      if (!me.createdb) return `${me.name} may not create databases (CREATEDB), so the database could be dropped but not recreated`;
      if (me.owns === false) return `${me.name} does not own the database ${target}, so it may not drop it`;
      const roles = (await client.query<{ n: number }>('select count(*)::int as n from pg_roles where rolname = any ($1)', [DATABASE_ROLES])).rows[0]!.n;
      if (roles !== DATABASE_ROLES.length) return 'the API roles do not all exist, and creating them needs a superuser';
      const templated = await withPgClient(
        onDatabase(db.rootUrl, 'template1'),
        async (t) => (await t.query("select 1 from pg_extension where extname = 'vector'")).rowCount! > 0,
      ).catch(() => false);
      if (!templated) return 'a new database would lack the vector extension (it is not in template1), and creating it needs a superuser';
      return null;
    });
  } catch (err) {
    return `the root connection failed: ${(err as Error).message}`;
  }
}
