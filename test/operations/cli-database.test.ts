// The database commands as users run them, each a `sheratan` process on both
// backends (issue 31: they were called as functions): db:bootstrap, db:watch
// (--once and on every save), db:status, db:commit, db:uncommit, db:reset,
// db:psql and schema:export. They run from a copy of the project
// (support/project-copy.ts), whose current.sql, committed migrations and
// schema files are this test's own; every check of the database's state goes
// through `db:psql` too, as a user would look. On the embedded engine this
// file serves the data directory itself, once, and every command attaches to
// that engine, as commands do while `npm start` runs (an engine start per
// command would cost seconds each).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/config.ts';
import { onDatabase, openDatabase, withPgClient, type Database } from '../../src/database/connect.ts';
import { backend, createTestDatabase, SUPERUSER_URL, type TestDatabase } from '../support/backend.ts';
import { copyProject, type ProjectCopy } from '../support/project-copy.ts';
import { waitFor } from '../support/processes.ts';

/** Whole processes, each (embedded) starting the engine. */
const LONG = 120_000;

let db: TestDatabase;
let project: ProjectCopy;
let env: Record<string, string>;
let served: Database | undefined;
beforeAll(async () => {
  db = await createTestDatabase();
  project = copyProject();
  env = { ...db.env, LOG_LEVEL: 'silent' };
  if (backend === 'embedded') served = await openDatabase(parseConfig(env), { purpose: 'cli-database test', serve: true });
  const migrate = await project.run(['db:migrate'], env);
  succeeded(migrate);
}, LONG);
afterAll(async () => {
  await served?.close();
  project?.remove();
  await db?.drop();
});

/** One query's first row's values, '|'-joined, as the owner (db:psql itself has its own test). */
async function asOwner(sql: string): Promise<string> {
  const url = served?.ownerUrl ?? db.ownerUrl!;
  return withPgClient(url, async (c) => {
    const results = await c.query({ text: sql, rowMode: 'array' });
    const last = Array.isArray(results) ? results.at(-1) : results;
    return ((last.rows[0] ?? []) as unknown[]).map((v) => (typeof v === 'boolean' ? (v ? 't' : 'f') : String(v))).join('|');
  });
}
/** Exit 0, or the test fails showing what the command said. */
function succeeded(run: { code: number | null; output: string }): void {
  if (run.code !== 0) throw new Error(`exited ${run.code}:\n${run.output}`);
}
const committedFiles = (): string[] => readdirSync(path.join(project.root, 'migrations', 'committed')).sort();
const PROBE = 'create table if not exists sheratan_private.cli_probe (id int primary key);\n';

test(
  'db:psql runs psql as the owner on the database (on a server, not a superuser)',
  async () => {
    const run = await project.run(
      ['db:psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', 'select current_user, usesuper from pg_user where usename = current_user'],
      env,
    );
    expect(run).toEqual({ code: 0, output: backend === 'server' ? 'sheratan|f\n' : expect.stringMatching(/^sheratan\|[tf]\n$/) });
    // psql's own exit status is the command's.
    expect(await project.run(['db:psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', 'select no_such_column'], env)).toEqual({
      code: 1,
      output: expect.stringMatching(/column "no_such_column" does not exist/),
    });
  },
  LONG,
);

test(
  'db:status exits 0 when up to date and 2 when current.sql has uncommitted changes; db:watch --once applies it',
  async () => {
    expect(await project.run(['db:status'], env)).toEqual({ code: 0, output: 'Database is up to date with the committed migrations.\n' });
    writeFileSync(project.currentSql, PROBE);
    expect(await project.run(['db:status'], env)).toEqual({
      code: 2,
      output: 'Database is up to date with the committed migrations.\nmigrations/current.sql has uncommitted changes.\n',
    });
    expect(await asOwner("select to_regclass('sheratan_private.cli_probe') is null")).toBe('t');
    const once = await project.run(['db:watch', '--once'], env);
    succeeded(once);
    expect(await asOwner("select to_regclass('sheratan_private.cli_probe') is not null")).toBe('t');
    // A current.sql that fails: exit 1, nothing applied.
    writeFileSync(project.currentSql, `${PROBE}create table sheratan_private.cli_broken (;\n`);
    const failed = await project.run(['db:watch', '--once'], env);
    expect(failed.code).toBe(1);
    expect(failed.output).toMatch(/syntax error/);
    expect(await asOwner("select to_regclass('sheratan_private.cli_broken') is null")).toBe('t');
    writeFileSync(project.currentSql, PROBE);
  },
  LONG,
);

test(
  'db:watch applies current.sql on every save until it is interrupted',
  async () => {
    writeFileSync(project.currentSql, PROBE);
    const watch = project.cli(['db:watch'], { ...env, LOG_LEVEL: 'info' });
    try {
      // Saved while it watches: the next table appears without another command.
      // (Its own first run happens at start; the save is repeated until it is seen, as an editor saves again.)
      const next = `${PROBE}create table if not exists sheratan_private.cli_probe_saved (id int primary key);\n`;
      await waitFor(
        async () => {
          if (watch.child.exitCode !== null) throw new Error(`db:watch exited: ${watch.output()}`);
          writeFileSync(project.currentSql, next);
          return /(applied|Finished)/.test(watch.output()) && (await asOwner("select to_regclass('sheratan_private.cli_probe_saved') is not null")) === 't';
        },
        60_000,
        'the saved current.sql applied by db:watch',
      );
    } finally {
      watch.child.kill('SIGINT');
    }
    const exit = await watch.exited;
    expect(exit.code === 0 || exit.signal === 'SIGINT').toBe(true);
  },
  LONG,
);

test(
  'db:commit commits current.sql as the next migration and db:uncommit moves it back',
  async () => {
    writeFileSync(project.currentSql, PROBE);
    const before = committedFiles();
    const commit = await project.run(['db:commit', '--message', 'cli probe'], env);
    succeeded(commit);
    const after = committedFiles();
    expect(after).toHaveLength(before.length + 1);
    const added = after.at(-1)!;
    expect(readFileSync(path.join(project.root, 'migrations', 'committed', added), 'utf8')).toMatch(/--! Message: cli probe[\s\S]*cli_probe/);
    expect(readFileSync(project.currentSql, 'utf8').trim()).toBe('-- Enter migration here');
    expect(await project.run(['db:status'], env)).toEqual({ code: 0, output: 'Database is up to date with the committed migrations.\n' });
    expect(await asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(after.length));

    const uncommit = await project.run(['db:uncommit'], env);
    succeeded(uncommit);
    expect(committedFiles()).toEqual(before);
    expect(readFileSync(project.currentSql, 'utf8')).toMatch(/cli_probe/);
    expect(await asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(before.length));
  },
  LONG,
);

test(
  'db:reset wants --erase; with it, the data is gone, the roles stay and every committed migration is applied again',
  async () => {
    await asOwner("set jwt.claims.tenant = 't'; insert into sheratan.documents (tenant, title) values ('t', 'doomed')");
    expect(await asOwner('select count(*) from sheratan.documents')).toBe('1');
    const unconfirmed = await project.run(['db:reset'], env);
    expect(unconfirmed).toEqual({ code: 2, output: 'db:reset drops and recreates the database, deleting all data. Add --erase to confirm.\n' });
    expect(await asOwner('select count(*) from sheratan.documents')).toBe('1');

    const reset = await project.run(['db:reset', '--erase'], env);
    succeeded(reset);
    expect(await asOwner('select count(*) from sheratan.documents')).toBe('0');
    expect(await asOwner('select count(*) from graphile_migrate.migrations')).toBe(String(committedFiles().length));
    expect(await asOwner("select string_agg(rolname, ',' order by rolname) from pg_roles where rolname like 'sheratan%'")).toMatch(
      /sheratan,sheratan_anonymous,sheratan_app,sheratan_authenticator,sheratan_readonly/,
    );
    // current.sql is not part of a reset: db:watch applies it again.
    expect(await asOwner("select to_regclass('sheratan_private.cli_probe') is null")).toBe('t');
  },
  LONG,
);

test(
  'schema:export writes the SDL of both endpoints into the project',
  async () => {
    writeFileSync(path.join(project.root, 'schema.graphql'), '');
    writeFileSync(path.join(project.root, 'reporting.graphql'), '');
    const run = await project.run(['schema:export'], env);
    succeeded(run);
    expect(run.output).toMatch(/^wrote schema\.graphql and reporting\.graphql\n$/m);
    expect(readFileSync(path.join(project.root, 'schema.graphql'), 'utf8')).toMatch(/^type Query [\s\S]*searchDocumentChunks\(/m);
    expect(readFileSync(path.join(project.root, 'reporting.graphql'), 'utf8')).toMatch(/^type Query /m);
  },
  LONG,
);

test(
  backend === 'server'
    ? 'db:bootstrap creates the database and says what it will do first; db:migrate then works as the owner'
    : 'db:bootstrap on the embedded engine says it is for a server and exits 1',
  async () => {
    if (backend === 'embedded') {
      const run = await project.run(['db:bootstrap'], env);
      expect(run.code).toBe(1);
      expect(run.output).toMatch(/db:bootstrap is for a PostgreSQL server \(DATABASE_URL\); the embedded database needs none/);
      return;
    }
    const name = `sheratan_cli_bootstrap_${randomBytes(4).toString('hex')}`;
    const url = (user: string, password: string): string => {
      const u = new URL(onDatabase(SUPERUSER_URL!, name));
      u.username = user;
      u.password = password;
      return u.toString();
    };
    const owner = new URL(db.env.DATABASE_URL!);
    const auth = new URL(db.env.AUTH_DATABASE_URL!);
    const here = {
      ...env,
      DATABASE_URL: url(owner.username, decodeURIComponent(owner.password)),
      AUTH_DATABASE_URL: url(auth.username, decodeURIComponent(auth.password)),
    };
    try {
      const boot = await project.run(['db:bootstrap'], { ...here, ROOT_DATABASE_URL: SUPERUSER_URL! });
      succeeded(boot);
      expect(boot.output.indexOf('db:bootstrap will:')).toBe(0);
      expect(boot.output).toMatch(/✓ [\s\S]*next: npm run db:migrate/);
      expect(
        await withPgClient(
          SUPERUSER_URL!,
          async (c) => (await c.query('select pg_get_userbyid(datdba) as owner from pg_database where datname = $1', [name])).rows,
        ),
      ).toEqual([{ owner: 'sheratan' }]);
      succeeded(await project.run(['db:migrate'], here));
    } finally {
      await withPgClient(SUPERUSER_URL!, (c) => c.query(`drop database if exists ${c.escapeIdentifier(name)} with (force)`));
    }
  },
  LONG,
);
