// What needs a superuser on a server, done once (`npm run db:bootstrap` with
// ROOT_DATABASE_URL): the owner role and its database when missing, the API
// roles, the vector extension, the authenticator's password. From then on
// every command works with the owner's DATABASE_URL alone.
import type pg from 'pg';
import { ConfigError, type Config } from '../config/config.ts';
import { databaseName, onDatabase, userName, withPgClient, type Database } from '../database/connect.ts';
import { ensureRoles } from '../database/migrations.ts';
import { DATABASE_ROLES } from '../config/roles.ts';

export interface BootstrapOptions {
  /** Give the owner CREATEDB (graphile-migrate's shadow database and db:reset need it). */
  createdb: boolean;
}

const ident = (client: pg.Client, name: string): string => client.escapeIdentifier(name);

async function exists(client: pg.Client, sql: string, params: unknown[]): Promise<boolean> {
  return (await client.query(sql, params)).rowCount! > 0;
}

/** Runs the bootstrap; returns one line per thing it did or found in place. */
export async function bootstrapServer(config: Config, db: Database, options: BootstrapOptions): Promise<string[]> {
  if (db.backend !== 'server') throw new ConfigError('db:bootstrap is for a PostgreSQL server (DATABASE_URL); the embedded database needs none');
  if (!config.rootDatabaseUrl) {
    throw new ConfigError('db:bootstrap needs ROOT_DATABASE_URL: a superuser connection string (e.g. postgresql://postgres:…@localhost:5432/postgres), used for this command only');
  }
  const done: string[] = [];
  const owner = userName(db.ownerUrl);
  const ownerPassword = decodeURIComponent(new URL(db.ownerUrl).password);
  const dbName = databaseName(db.ownerUrl);
  await withPgClient(config.rootDatabaseUrl, async (root) => {
    const me = (await root.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = current_user')).rows[0];
    if (!me?.rolsuper) throw new Error(`ROOT_DATABASE_URL connects as ${userName(config.rootDatabaseUrl!)}, which is not a superuser; db:bootstrap needs one`);
    // Roles are cluster-wide: two bootstraps at once (two stores on one cluster) take turns.
    await root.query("select pg_advisory_lock(hashtext('sheratan db:bootstrap'))");
    try {
      if (!(await exists(root, 'select 1 from pg_roles where rolname = $1', [owner]))) {
        if (!ownerPassword) throw new ConfigError(`the owner role ${owner} does not exist; put its password in DATABASE_URL and db:bootstrap creates it`);
        await root.query(`create role ${ident(root, owner)} login password ${root.escapeLiteral(ownerPassword)}`);
        done.push(`created the owner role ${owner} (LOGIN, not a superuser)`);
      } else {
        if (ownerPassword) await root.query(`alter role ${ident(root, owner)} with login password ${root.escapeLiteral(ownerPassword)}`);
        done.push(`the owner role ${owner} exists${ownerPassword ? '; its password is the one in DATABASE_URL' : ''}`);
      }
      if (options.createdb) {
        await root.query(`alter role ${ident(root, owner)} createdb`);
        done.push(`${owner} may create databases (graphile-migrate's shadow database on db:commit, db:reset in development)`);
      }
      if (!(await exists(root, 'select 1 from pg_database where datname = $1', [dbName]))) {
        await root.query(`create database ${ident(root, dbName)} owner ${ident(root, owner)}`);
        done.push(`created the database ${dbName} owned by ${owner}`);
      } else {
        done.push(`the database ${dbName} exists`);
      }
      // migrations/afterReset.sql, as the superuser on the owner's database.
      await ensureRoles(db, config);
      await withPgClient(onDatabase(config.rootDatabaseUrl!, dbName), async (target) => {
        // PostgreSQL 14 gives the public schema to the bootstrap superuser; the
        // migrations grant on it, so its owner must be the database owner (15+ does this itself).
        await target.query(`
          do $$ begin
            if (select nspowner::regrole::text from pg_namespace where nspname = 'public') not in ('pg_database_owner', ${target.escapeLiteral(owner)}) then
              execute format('alter schema public owner to %I', ${target.escapeLiteral(owner)});
            end if;
          end $$`);
      });
      done.push(`the API roles ${DATABASE_ROLES.join(', ')} are in place`);
      done.push(`the vector extension is created in ${dbName}`);
      // Databases graphile-migrate creates (the shadow on every db:commit, the
      // database on db:reset) are copies of template1: with the extension there
      // they need no superuser.
      await withPgClient(onDatabase(config.rootDatabaseUrl!, 'template1'), (t) => t.query('create extension if not exists vector'));
      done.push('the vector extension is in template1, so databases the owner creates have it');
      const authPassword = decodeURIComponent(new URL(db.authUrl).password);
      if (authPassword) {
        await root.query(`alter role sheratan_authenticator with password ${root.escapeLiteral(authPassword)}`);
        done.push('set sheratan_authenticator\'s password from AUTH_DATABASE_URL (cluster-wide: every store on this cluster uses it)');
      } else {
        done.push('AUTH_DATABASE_URL has no password: sheratan_authenticator\'s password is unchanged');
      }
    } finally {
      await root.query("select pg_advisory_unlock(hashtext('sheratan db:bootstrap'))").catch(() => undefined);
    }
  });
  return done;
}
