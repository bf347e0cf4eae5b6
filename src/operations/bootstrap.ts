// What needs a superuser on a server, done once (`npm run db:bootstrap` with
// ROOT_DATABASE_URL): the owner role and its database when missing, the API
// roles, the vector extension, the authenticator's password. From then on
// every command works with the owner's DATABASE_URL alone.
//
// Roles are cluster-wide and several stores may share a cluster (each with its
// own DATABASE_ROLE_PREFIX): the bootstrap first looks at what is there and
// says what it will do, and it never changes the password of a role that has
// one unless told to (--reset-password): another store's gateway may be
// logging in with it.
import pg from 'pg';
import { ConfigError, type Config } from '../config/config.ts';
import { databaseName, onDatabase, userName, withPgClient, type Database } from '../database/connect.ts';
import { ensureRoles } from '../database/migrations.ts';
import { AUTHENTICATOR_ROLE, COMMITTED_ROLES, DATABASE_ROLES, ROLE_PREFIX } from '../config/roles.ts';

export interface BootstrapOptions {
  /** Give the owner CREATEDB (graphile-migrate's shadow database and db:reset need it). */
  createdb: boolean;
  /** Set the owner's and the authenticator's passwords from the connection strings even when they have one. */
  resetPassword?: boolean;
  /** Say what would be done, do nothing. */
  dryRun?: boolean;
  /** Hears the plan (one line a step) before anything is changed. */
  onPlan?: (steps: string[]) => void;
}

interface Step {
  /** What it will do, said before anything is done. */
  will: string;
  /** What it did (a line starting with `!` is something the operator must act on). */
  done: string;
  run?: () => Promise<void>;
}

const ident = (client: pg.Client, name: string): string => client.escapeIdentifier(name);

async function exists(client: pg.Client, sql: string, params: unknown[]): Promise<boolean> {
  return (await client.query(sql, params)).rowCount! > 0;
}

/**
 * Whether `password` is `role`'s: a login attempt on the root connection's
 * server. true: it is; false: the server refused it; null: the attempt says
 * nothing (no password to try, or refused for another reason, e.g. pg_hba).
 */
async function passwordWorks(rootUrl: string, role: string, password: string): Promise<boolean | null> {
  const url = new URL(rootUrl);
  url.username = encodeURIComponent(role);
  url.password = encodeURIComponent(password);
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    // 28P01 invalid_password; 28000 invalid_authorization_specification (NOLOGIN, pg_hba) says nothing about the password.
    return (err as { code?: string }).code === '28P01' ? false : null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The password step of a login role: set when the role has none (it was
 * created now, or without one); otherwise left alone unless `reset`, saying
 * whether the connection string's password is the role's.
 */
async function passwordStep(root: pg.Client, rootUrl: string, role: string, variable: string, password: string, reset: boolean, shared: string): Promise<Step> {
  const set = async () => {
    await root.query(`alter role ${ident(root, role)} with password ${root.escapeLiteral(password)}`);
  };
  if (!password) {
    return { will: `leave ${role}'s password as it is (${variable} has none)`, done: `${variable} has no password: ${role}'s password is unchanged` };
  }
  const current = (await root.query<{ has: boolean }>('select rolpassword is not null as has from pg_authid where rolname = $1', [role])).rows[0];
  if (!current?.has) {
    return { will: `set ${role}'s password from ${variable} (it has none)`, done: `set ${role}'s password from ${variable}`, run: set };
  }
  if (reset) {
    return {
      will: `RESET ${role}'s password to the one in ${variable} (--reset-password; ${shared})`,
      done: `reset ${role}'s password to the one in ${variable} (${shared})`,
      run: set,
    };
  }
  const works = await passwordWorks(rootUrl, role, password);
  if (works === false) {
    return {
      will: `leave ${role}'s password as it is: it has one, and it is not the one in ${variable}`,
      done:
        `! ${role} has a password and it is not the one in ${variable}; it is unchanged (${shared}). ` +
        `If this store owns ${role}: npm run db:bootstrap -- --reset-password. For another store on this cluster: give it its own roles with DATABASE_ROLE_PREFIX`,
    };
  }
  return {
    will: `leave ${role}'s password as it is (it has one${works ? `, the one in ${variable}` : ''})`,
    done: `${role}'s password is unchanged${works ? ` (it is the one in ${variable})` : ''}`,
  };
}

/**
 * Runs the bootstrap: looks at the cluster, tells `onPlan` what it will do,
 * then does it. Returns one line per step, done or found in place.
 */
export async function bootstrapServer(config: Config, db: Database, options: BootstrapOptions): Promise<string[]> {
  if (db.backend !== 'server') throw new ConfigError('db:bootstrap is for a PostgreSQL server (DATABASE_URL); the embedded database needs none');
  const rootUrl = config.rootDatabaseUrl;
  if (!rootUrl) {
    throw new ConfigError(
      'db:bootstrap needs ROOT_DATABASE_URL: a superuser connection string (e.g. postgresql://postgres:…@localhost:5432/postgres), used for this command only',
    );
  }
  const owner = userName(db.ownerUrl);
  const ownerPassword = decodeURIComponent(new URL(db.ownerUrl).password);
  const authPassword = decodeURIComponent(new URL(db.authUrl).password);
  const dbName = databaseName(db.ownerUrl);
  const reset = options.resetPassword === true;
  return withPgClient(rootUrl, async (root) => {
    const me = (await root.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = current_user')).rows[0];
    if (!me?.rolsuper) throw new Error(`ROOT_DATABASE_URL connects as ${userName(rootUrl)}, which is not a superuser; db:bootstrap needs one`);
    // Roles are cluster-wide: two bootstraps at once (two stores on one cluster) take turns.
    await root.query("select pg_advisory_lock(hashtext('sheratan db:bootstrap'))");
    try {
      const steps: Step[] = [];
      const ownerExists = await exists(root, 'select 1 from pg_roles where rolname = $1', [owner]);
      if (!ownerExists) {
        if (!ownerPassword) throw new ConfigError(`the owner role ${owner} does not exist; put its password in DATABASE_URL and db:bootstrap creates it`);
        steps.push({
          will: `create the owner role ${owner} (LOGIN, not a superuser) with the password in DATABASE_URL`,
          done: `created the owner role ${owner} (LOGIN, not a superuser)`,
          run: async () => void (await root.query(`create role ${ident(root, owner)} login password ${root.escapeLiteral(ownerPassword)}`)),
        });
      } else {
        steps.push({ will: `use the owner role ${owner} (it exists)`, done: `the owner role ${owner} exists` });
        steps.push(await passwordStep(root, rootUrl, owner, 'DATABASE_URL', ownerPassword, reset, 'the owner of every database it owns'));
      }
      if (options.createdb) {
        steps.push({
          will: `let ${owner} create databases (CREATEDB)`,
          done: `${owner} may create databases (graphile-migrate's shadow database on db:commit, db:reset in development)`,
          run: async () => void (await root.query(`alter role ${ident(root, owner)} createdb`)),
        });
      }
      if (!(await exists(root, 'select 1 from pg_database where datname = $1', [dbName]))) {
        steps.push({
          will: `create the database ${dbName} owned by ${owner}`,
          done: `created the database ${dbName} owned by ${owner}`,
          run: async () => void (await root.query(`create database ${ident(root, dbName)} owner ${ident(root, owner)}`)),
        });
      } else {
        steps.push({ will: `use the database ${dbName} (it exists)`, done: `the database ${dbName} exists` });
      }
      const present = (await root.query<{ rolname: string }>('select rolname from pg_roles where rolname = any ($1)', [[...DATABASE_ROLES]])).rows.map(
        (r) => r.rolname,
      );
      const missing = DATABASE_ROLES.filter((r) => !present.includes(r));
      const committedNames = Object.values(COMMITTED_ROLES).filter((r) => !DATABASE_ROLES.includes(r));
      const committedPresent = (await root.query<{ rolname: string }>('select rolname from pg_roles where rolname = any ($1)', [committedNames])).rows.map(
        (r) => r.rolname,
      );
      const committedMissing = committedNames.filter((r) => !committedPresent.includes(r));
      steps.push({
        will:
          `${missing.length ? `create the roles ${missing.join(', ')}` : `check the roles ${DATABASE_ROLES.join(', ')} (they exist)`}` +
          ` (DATABASE_ROLE_PREFIX ${ROLE_PREFIX}), the vector extension in ${dbName} and the authenticator's CONNECT` +
          (committedMissing.length
            ? `; create ${committedMissing.join(', ')} as bare NOLOGIN roles (the committed migrations' names: they hold nothing in this store)`
            : ''),
        done: `the API roles ${DATABASE_ROLES.join(', ')} are in place; the vector extension is created in ${dbName}`,
        run: async () => {
          // migrations/afterReset.sql and committed-roles.sql, as the superuser on the owner's database.
          await ensureRoles(db, config);
          await withPgClient(onDatabase(rootUrl, dbName), async (target) => {
            // PostgreSQL 14 gives the public schema to the bootstrap superuser; the
            // migrations grant on it, so its owner must be the database owner (15+ does this itself).
            await target.query(`
              do $$ begin
                if (select nspowner::regrole::text from pg_namespace where nspname = 'public') not in ('pg_database_owner', ${target.escapeLiteral(owner)}) then
                  execute format('alter schema public owner to %I', ${target.escapeLiteral(owner)});
                end if;
              end $$`);
          });
        },
      });
      // Databases graphile-migrate creates (the shadow on every db:commit, the
      // database on db:reset) are copies of template1: with the extension there
      // they need no superuser.
      steps.push({
        will: 'create the vector extension in template1 when it is not there',
        done: 'the vector extension is in template1, so databases the owner creates have it',
        run: async () => void (await withPgClient(onDatabase(rootUrl, 'template1'), (t) => t.query('create extension if not exists vector'))),
      });
      const shared = `every store whose AUTH_DATABASE_URL logs in as ${AUTHENTICATOR_ROLE} must use it`;
      if (missing.includes(AUTHENTICATOR_ROLE)) {
        steps.push(
          authPassword
            ? {
                will: `set ${AUTHENTICATOR_ROLE}'s password from AUTH_DATABASE_URL (the role is new)`,
                done: `set ${AUTHENTICATOR_ROLE}'s password from AUTH_DATABASE_URL`,
                run: async () => void (await root.query(`alter role ${ident(root, AUTHENTICATOR_ROLE)} with password ${root.escapeLiteral(authPassword)}`)),
              }
            : {
                will: `leave ${AUTHENTICATOR_ROLE} without a password (AUTH_DATABASE_URL has none)`,
                done: `AUTH_DATABASE_URL has no password: ${AUTHENTICATOR_ROLE} has none`,
              },
        );
      } else {
        steps.push(await passwordStep(root, rootUrl, AUTHENTICATOR_ROLE, 'AUTH_DATABASE_URL', authPassword, reset, shared));
      }
      options.onPlan?.(steps.map((s) => s.will));
      if (options.dryRun) return [];
      const done: string[] = [];
      for (const step of steps) {
        await step.run?.();
        done.push(step.done);
      }
      return done;
    } finally {
      await root.query("select pg_advisory_unlock(hashtext('sheratan db:bootstrap'))").catch(() => undefined);
    }
  });
}
