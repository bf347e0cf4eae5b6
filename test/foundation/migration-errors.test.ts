// A migration that fails tells the user why, on both backends and from both
// commands that migrate: the migration file, the statement and its line, and
// the database's own message with its SQLSTATE. Nothing of the failed
// migration stays. (Embedded, `npm start` once printed only "graphile-migrate:
// An error occurred in the PgPool: Connection terminated unexpectedly".)
import { createTestDatabase, embeddedTest, type TestDatabase } from '../support/backend.ts';
import { runCli } from '../support/processes.ts';
import { parseConfig } from '../../src/config/config.ts';
import { openDatabase, withPgClient } from '../../src/database/connect.ts';

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
