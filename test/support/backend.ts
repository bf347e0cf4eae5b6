// Which database the suite runs on. Without TEST_DATABASE_URL every test file
// gets a fresh embedded data directory; with it (a superuser connection
// string of a PostgreSQL server with pgvector available) every test file gets
// a fresh database on that server, bootstrapped as the README's server setup
// says, and the gateway and commands use only the owner (not a superuser) and
// the authenticator, exactly as in production. The superuser is used here
// for the one-time bootstrap and to drop the database afterwards, nothing else.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { onDatabase, openDatabase, withPgClient, type Database } from '../../src/database/connect.ts';
import { bootstrapServer } from '../../src/operations/bootstrap.ts';
import { migrateToHead, structuredMigrateLogger } from '../../src/database/migrations.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { AUTHENTICATOR_ROLE } from '../../src/config/roles.ts';
import { OWNER_ROLE } from '@sheratan/pglite-server';

export const SUPERUSER_URL = process.env.TEST_DATABASE_URL || undefined;
export const backend: 'embedded' | 'server' = SUPERUSER_URL ? 'server' : 'embedded';

// The suite brings its own 384-number vectors, as clients did before the
// store embedded text: every database, config and process a test makes runs
// with EMBEDDING_PROVIDER=none (VECTOR_DIMENSION 384) unless the test opts in
// to `local` or `openai` by setting EMBEDDING_PROVIDER itself.
export const TEST_EMBEDDING_ENV = { EMBEDDING_PROVIDER: 'none' } as const;

/**
 * A gateway or database that a test's own process serves runs its embedded
 * engine in a supervised child process (EMBEDDED_ENGINE=process). V8's
 * occasional abort (nodejs/node#64500) strikes as an engine's thread ends and
 * its WebAssembly is freed: in a jest worker it ends the file (and the worker),
 * in an engine's process after its database is closed it costs nothing
 * (supervisor.ts), as it costs a user's gateway nothing at its stop. The
 * default (a worker thread, reached over the in-process channel) is tested by
 * the files that ask for it, and by every test that runs `npm start`,
 * `npm run dev` or a command as a process.
 */
export const TEST_ENGINE_ENV = { EMBEDDED_ENGINE: 'process' } as const;
process.env.EMBEDDING_PROVIDER ??= TEST_EMBEDDING_ENV.EMBEDDING_PROVIDER;

/** The README's owner: a login that is not a superuser and may not create roles; named as the embedded engine's owner is. */
export { OWNER_ROLE };
export const OWNER_PASSWORD = 'sheratan-test-owner-password';
export const AUTHENTICATOR_PASSWORD = 'sheratan-test-authenticator-password';
/** Server mode has no generated secret; tests sign with this one. */
export const SERVER_JWT_SECRET = 'sheratan-test-jwt-secret-0123456789abcdef';

export function tempDataDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sheratan-test-'));
}

function withLogin(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export interface TestDatabase {
  /** What a process needs to use it: SHERATAN_DATA_DIR, or DATABASE_URL and friends. */
  env: Record<string, string>;
  /** The owner's connection string (server only; embedded ones exist while an engine runs). */
  ownerUrl?: string;
  /** The superuser's connection string to this database (server only: for set-up a test cannot do as the owner). */
  superuserUrl?: string;
  drop(): Promise<void>;
}

/** A new, empty database (nothing migrated): an embedded data directory or a bootstrapped server database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!SUPERUSER_URL) {
    const dir = tempDataDir();
    return { env: { SHERATAN_DATA_DIR: dir, ...TEST_EMBEDDING_ENV }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  return createServerTestDatabase(SUPERUSER_URL);
}

/** A new database bootstrapped on the server `superuserUrl` names (TEST_DATABASE_URL's, or a cluster of a test's own). */
export async function createServerTestDatabase(superuserUrl: string): Promise<TestDatabase> {
  const name = `sheratan_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const ownerUrl = withLogin(onDatabase(superuserUrl, name), OWNER_ROLE, OWNER_PASSWORD);
  const env = {
    DATABASE_URL: ownerUrl,
    AUTH_DATABASE_URL: withLogin(onDatabase(superuserUrl, name), AUTHENTICATOR_ROLE, AUTHENTICATOR_PASSWORD),
    JWT_SECRET: SERVER_JWT_SECRET,
    ...TEST_EMBEDDING_ENV,
  };
  const config = parseConfig({ ...env, ROOT_DATABASE_URL: superuserUrl });
  await bootstrapServer(config, await openDatabase(config, { purpose: 'test' }), { createdb: true });
  return {
    env,
    ownerUrl,
    superuserUrl: onDatabase(superuserUrl, name),
    async drop() {
      await withPgClient(superuserUrl, async (c) => {
        // Connections still closing are let go first (up to 5 s): graphile-migrate ends its idle pools without
        // waiting, and a forced drop that cut one of them would end this process through its pool's error handler.
        const databases = [name, `${name}_shadow`];
        const sessions = async (): Promise<number> =>
          (await c.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = any($1)', [databases])).rows[0]!.n;
        for (const until = Date.now() + 5000; Date.now() < until && (await sessions()) > 0;) await new Promise((r) => setTimeout(r, 50));
        for (const db of databases) await c.query(`drop database if exists ${c.escapeIdentifier(db)} with (force)`);
      });
    },
  };
}

/** On a server, `npm run db:migrate` as the README's step before `npm start` (the embedded gateway migrates at start). */
export async function migrateTestDatabase(config: Config): Promise<void> {
  if (!config.databaseUrl) return;
  const db = await openDatabase(config, { purpose: 'test migrate' });
  try {
    await migrateOpenDatabase(config, db);
  } finally {
    await db.close();
  }
}

/** Migrations to head on a database already open (embedded: an engine this process serves), logged as the commands log them. */
export async function migrateOpenDatabase(config: Config, db: Database): Promise<void> {
  setLogLevel(config.logLevel);
  await migrateToHead(config, db, structuredMigrateLogger);
}

/**
 * `test.skip` with `[where only: reason]` added to the name, so that the run's
 * report (and test/expected-skips.json) shows what this backend leaves out
 * and why; its `.each` skips each case the same way.
 */
function skipSaying(where: 'embedded' | 'server', reason: string): jest.It {
  const say = (name: string): string => `${name} [${where} only: ${reason}]`;
  const skip = (name: string, ...rest: unknown[]) => (test.skip as (...a: unknown[]) => void)(say(name), ...rest);
  const each =
    (...table: unknown[]) =>
    (name: string, ...rest: unknown[]) =>
      ((test.skip.each as (...t: unknown[]) => (...a: unknown[]) => void)(...table) as (...a: unknown[]) => void)(say(name), ...rest);
  return Object.assign(skip, test, { each }) as unknown as jest.It;
}

/** `test` on the embedded engine; on a server, skipped with the reason in its name. */
export const embeddedTest = (reason: string): jest.It => (backend === 'embedded' ? test : skipSaying('embedded', reason));

/** `describe` on the embedded engine; on a server, skipped with the reason in its name. */
export const describeEmbedded = (reason: string, name: string, fn: () => void): void =>
  backend === 'embedded' ? describe(name, fn) : describe.skip(`${name} [embedded only: ${reason}]`, fn);

/** `test` on a server only; on the embedded engine, skipped with the reason in its name. */
export const serverTest = (reason: string): jest.It => (backend === 'server' ? test : skipSaying('server', reason));
