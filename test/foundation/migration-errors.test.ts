// A migration that fails tells the user why, on both backends and from both
// commands that migrate: the migration file, the statement and its line, and
// the database's own message with its SQLSTATE. Nothing of the failed
// migration stays. (Embedded, `npm start` once printed only "graphile-migrate:
// An error occurred in the PgPool: Connection terminated unexpectedly".)
import { randomBytes } from 'node:crypto';
import { createTestDatabase, embeddedTest, serverTest, SUPERUSER_URL, type TestDatabase } from '../support/backend.ts';
import { runCli } from '../support/processes.ts';
import { parseConfig } from '../../src/config/config.ts';
import { onDatabase, openDatabase, withPgClient } from '../../src/database/connect.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

// A text search configuration that does not exist: migration 000007 uses it in a generated column.
const BAD = { TEXT_SEARCH_CONFIG: 'klingon', LOG_LEVEL: 'error', JWT_SECRET: 'migration-errors-test-secret-0123456789ab' };
const EXPECTED =
  /migration 000007-retrieval-quality-full-text-column-hybrid-search-mmr-per-doc\.sql failed at line \d+, in the statement:\n {4}alter table sheratan\.document_chunks add column content_search tsvector\n[\s\S]*text search configuration "klingon" does not exist \(SQLSTATE 42704\)/;

const NAME = "names the migration, the statement and the database's reason, exits 1, and keeps nothing of it";

async function failsToMigrate(command: 'db:migrate' | 'start'): Promise<void> {
  const cli = runCli([command], { ...database.env, ...BAD });
  const exit = await cli.exited;
  expect(cli.output()).toMatch(EXPECTED);
  expect(cli.output()).not.toMatch(/PgPool|Connection terminated/);
  expect(exit.code).toBe(1);
  const db = await openDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }), { purpose: 'test' });
  try {
    const applied = await withPgClient(
      db.ownerUrl,
      async (c) => (await c.query<{ n: number }>("select count(*)::int as n from graphile_migrate.migrations where filename like '000007%'")).rows[0]!.n,
    );
    expect(applied).toBe(0);
  } finally {
    await db.close();
  }
}

test(`db:migrate ${NAME}`, () => failsToMigrate('db:migrate'), 120_000);
embeddedTest('on a server npm start does not migrate: db:migrate is the step before it')(`start ${NAME}`, () => failsToMigrate('start'), 120_000);

// README, Troubleshooting: "role sheratan_app is missing and sheratan may not fix it (or the vector extension is not created)".
serverTest('db:bootstrap prepares a server database; the embedded engine creates the extension itself')(
  'db:migrate on a database the bootstrap never prepared names what is missing, that the owner may not fix it, and db:bootstrap; it applies nothing',
  async () => {
    // A database of the owner's without the extension (template0: the bootstrap put it in template1 only).
    const name = `sheratan_unprepared_${randomBytes(4).toString('hex')}`;
    await withPgClient(SUPERUSER_URL!, (c) => c.query(`create database ${name} owner sheratan template template0`));
    try {
      const env = {
        ...database.env,
        DATABASE_URL: onDatabase(database.env.DATABASE_URL!, name),
        AUTH_DATABASE_URL: onDatabase(database.env.AUTH_DATABASE_URL!, name),
        LOG_LEVEL: 'error',
      };
      const cli = runCli(['db:migrate'], env);
      expect((await cli.exited).code).toBe(1);
      expect(cli.output()).toMatch(new RegExp(`the vector extension is not created in database ${name} and sheratan may not fix it`));
      expect(cli.output()).toMatch(/npm run db:bootstrap/);
      const tables = await withPgClient(
        onDatabase(SUPERUSER_URL!, name),
        async (c) => (await c.query<{ n: number }>("select count(*)::int as n from pg_tables where schemaname = 'sheratan'")).rows[0]!.n,
      );
      expect(tables).toBe(0);
    } finally {
      await withPgClient(SUPERUSER_URL!, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  },
  120_000,
);

// README, Troubleshooting, the roles' case of the same refusal: a store whose
// roles no bootstrap made. A fresh DATABASE_ROLE_PREFIX names roles nobody
// has, so the shared server's roles stay untouched; the owner (not a
// superuser, without CREATEROLE) may not create them.
serverTest('db:bootstrap creates server roles; the embedded engine has fixed logins of its own')(
  'db:migrate with roles the bootstrap never made names the missing role, that the owner may not fix it, and db:bootstrap; it creates no role',
  async () => {
    const prefix = `sheratan_unmade_${randomBytes(4).toString('hex')}`;
    const auth = new URL(database.env.AUTH_DATABASE_URL!);
    auth.username = `${prefix}_authenticator`;
    const cli = runCli(['db:migrate'], { ...database.env, DATABASE_ROLE_PREFIX: prefix, AUTH_DATABASE_URL: auth.toString(), LOG_LEVEL: 'error' });
    expect((await cli.exited).code).toBe(1);
    const owner = new URL(database.env.DATABASE_URL!).username;
    expect(cli.output()).toContain(`role ${prefix}_authenticator is missing and ${owner} may not fix it`);
    expect(cli.output()).toMatch(/npm run db:bootstrap/);
    const made = await withPgClient(
      SUPERUSER_URL!,
      async (c) => (await c.query<{ n: number }>('select count(*)::int as n from pg_roles where rolname like $1', [`${prefix}%`])).rows[0]!.n,
    );
    expect(made).toBe(0);
  },
  120_000,
);
