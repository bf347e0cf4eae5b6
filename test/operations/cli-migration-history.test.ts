// db:commit, db:uncommit and db:reset as users run them, each a `sheratan`
// process on both backends (issue 31: they were called as functions, and
// db:reset --erase on a server then failed every time), from a copy of the
// project (support/cli-database.ts) whose migrations are this test's own.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCliDatabase, succeeded, type CliDatabase } from '../support/cli-database.ts';

/** Whole processes; each of these runs every committed migration again. */
const LONG = 180_000;

let c: CliDatabase;
beforeAll(async () => {
  c = await startCliDatabase('cli-migration-history test');
}, LONG);
afterAll(() => c?.close());

const PROBE = 'create table if not exists sheratan_private.cli_probe (id int primary key);\n';

test(
  'db:commit commits current.sql as the next migration and db:uncommit moves it back',
  async () => {
    writeFileSync(c.project.currentSql, PROBE);
    const before = c.committedFiles();
    const commit = await c.project.run(['db:commit', '--message', 'cli probe'], c.env);
    succeeded(commit);
    const after = c.committedFiles();
    expect(after).toHaveLength(before.length + 1);
    const added = after.at(-1)!;
    expect(readFileSync(path.join(c.project.root, 'migrations', 'committed', added), 'utf8')).toMatch(/--! Message: cli probe[\s\S]*cli_probe/);
    expect(readFileSync(c.project.currentSql, 'utf8').trim()).toBe('-- Enter migration here');
    expect(await c.project.run(['db:status'], c.env)).toEqual({ code: 0, output: 'Database is up to date with the committed migrations.\n' });
    expect(await c.asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(after.length));

    const uncommit = await c.project.run(['db:uncommit'], c.env);
    succeeded(uncommit);
    expect(c.committedFiles()).toEqual(before);
    expect(readFileSync(c.project.currentSql, 'utf8')).toMatch(/cli_probe/);
    expect(await c.asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(before.length));
  },
  LONG,
);

test(
  'db:reset wants --erase; with it, the data is gone, the roles stay and every committed migration is applied again',
  async () => {
    await c.asOwner("set jwt.claims.tenant = 't'; insert into sheratan.documents (tenant, title) values ('t', 'doomed')");
    expect(await c.asOwner('select count(*) from sheratan.documents')).toBe('1');
    const unconfirmed = await c.project.run(['db:reset'], c.env);
    expect(unconfirmed).toEqual({ code: 2, output: 'db:reset drops and recreates the database, deleting all data. Add --erase to confirm.\n' });
    expect(await c.asOwner('select count(*) from sheratan.documents')).toBe('1');

    const reset = await c.project.run(['db:reset', '--erase'], c.env);
    succeeded(reset);
    expect(await c.asOwner('select count(*) from sheratan.documents')).toBe('0');
    expect(await c.asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(c.committedFiles().length));
    expect(await c.asOwner("select string_agg(rolname, ',' order by rolname) from pg_roles where rolname like 'sheratan%'")).toMatch(
      /sheratan,sheratan_anonymous,sheratan_app,sheratan_authenticator,sheratan_readonly/,
    );
    // current.sql is not part of a reset: db:watch applies it again.
    expect(await c.asOwner("select to_regclass('sheratan_private.cli_probe') is null")).toBe('t');
  },
  LONG,
);
