// The database commands as users run them, each a `sheratan` process on both
// backends (issue 31: they were called as functions): db:psql, db:status,
// db:watch (--once and on every save), schema:export and db:bootstrap, from a
// copy of the project (support/cli-database.ts). db:commit, db:uncommit and
// db:reset are in cli-migration-history.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { onDatabase, withPgClient } from '../../src/database/connect.ts';
import { backend, SUPERUSER_URL } from '../support/backend.ts';
import { startCliDatabase, succeeded, type CliDatabase } from '../support/cli-database.ts';
import { waitFor } from '../support/processes.ts';

/** Whole processes. */
const LONG = 120_000;

let c: CliDatabase;
beforeAll(async () => {
  c = await startCliDatabase('cli-database test');
}, LONG);
afterAll(() => c?.close());

const PROBE = 'create table if not exists sheratan_private.cli_probe (id int primary key);\n';

test(
  'db:psql runs psql as the owner on the database (on a server, not a superuser)',
  async () => {
    const run = await c.project.run(
      ['db:psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', 'select current_user, usesuper from pg_user where usename = current_user'],
      c.env,
    );
    expect(run).toEqual({ code: 0, output: backend === 'server' ? 'sheratan|f\n' : expect.stringMatching(/^sheratan\|[tf]\n$/) });
    // psql's own exit status is the command's.
    expect(await c.project.run(['db:psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', 'select no_such_column'], c.env)).toEqual({
      code: 1,
      output: expect.stringMatching(/column "no_such_column" does not exist/),
    });
  },
  LONG,
);

test(
  'db:status exits 0 when up to date and 2 when current.sql has uncommitted changes; db:watch --once applies it',
  async () => {
    // An empty current.sql and no probe table first: another test of this file may have left them (the order is shuffled).
    writeFileSync(c.project.currentSql, '-- Enter migration here\n');
    await c.asOwner('drop table if exists sheratan_private.cli_probe; select 1');
    expect(await c.project.run(['db:status'], c.env)).toEqual({ code: 0, output: 'Database is up to date with the committed migrations.\n' });
    writeFileSync(c.project.currentSql, PROBE);
    expect(await c.project.run(['db:status'], c.env)).toEqual({
      code: 2,
      output: 'Database is up to date with the committed migrations.\nmigrations/current.sql has uncommitted changes.\n',
    });
    expect(await c.asOwner("select to_regclass('sheratan_private.cli_probe') is null")).toBe('t');
    const once = await c.project.run(['db:watch', '--once'], c.env);
    succeeded(once);
    expect(await c.asOwner("select to_regclass('sheratan_private.cli_probe') is not null")).toBe('t');
    // A current.sql that fails: exit 1, nothing applied.
    writeFileSync(c.project.currentSql, `${PROBE}create table sheratan_private.cli_broken (;\n`);
    const failed = await c.project.run(['db:watch', '--once'], c.env);
    expect(failed.code).toBe(1);
    expect(failed.output).toMatch(/syntax error/);
    expect(await c.asOwner("select to_regclass('sheratan_private.cli_broken') is null")).toBe('t');
    writeFileSync(c.project.currentSql, PROBE);
  },
  LONG,
);

test(
  'db:watch applies current.sql on every save until it is interrupted',
  async () => {
    writeFileSync(c.project.currentSql, PROBE);
    const watch = c.project.cli(['db:watch'], { ...c.env, LOG_LEVEL: 'info' });
    try {
      // Saved while it watches: the next table appears without another command.
      // (Its own first run happens at start; the save is repeated until it is seen, as an editor saves again.)
      const next = `${PROBE}create table if not exists sheratan_private.cli_probe_saved (id int primary key);\n`;
      await waitFor(
        async () => {
          if (watch.child.exitCode !== null) throw new Error(`db:watch exited: ${watch.output()}`);
          writeFileSync(c.project.currentSql, next);
          return /(applied|Finished)/.test(watch.output()) && (await c.asOwner("select to_regclass('sheratan_private.cli_probe_saved') is not null")) === 't';
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
  'schema:export writes the SDL of both endpoints into the project',
  async () => {
    writeFileSync(path.join(c.project.root, 'schema.graphql'), '');
    writeFileSync(path.join(c.project.root, 'reporting.graphql'), '');
    const run = await c.project.run(['schema:export'], c.env);
    succeeded(run);
    expect(run.output).toMatch(/^wrote schema\.graphql and reporting\.graphql\n$/m);
    expect(readFileSync(path.join(c.project.root, 'schema.graphql'), 'utf8')).toMatch(/^type Query [\s\S]*searchDocumentChunks\(/m);
    expect(readFileSync(path.join(c.project.root, 'reporting.graphql'), 'utf8')).toMatch(/^type Query /m);
  },
  LONG,
);

test(
  backend === 'server'
    ? 'db:bootstrap creates the database and says what it will do first; db:migrate then works as the owner'
    : 'db:bootstrap on the embedded engine says it is for a server and exits 1',
  async () => {
    if (backend === 'embedded') {
      const run = await c.project.run(['db:bootstrap'], c.env);
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
    const owner = new URL(c.db.env.DATABASE_URL!);
    const auth = new URL(c.db.env.AUTH_DATABASE_URL!);
    const here = {
      ...c.env,
      DATABASE_URL: url(owner.username, decodeURIComponent(owner.password)),
      AUTH_DATABASE_URL: url(auth.username, decodeURIComponent(auth.password)),
    };
    try {
      const boot = await c.project.run(['db:bootstrap'], { ...here, ROOT_DATABASE_URL: SUPERUSER_URL! });
      succeeded(boot);
      expect(boot.output.indexOf('db:bootstrap will:')).toBe(0);
      expect(boot.output).toMatch(/✓ [\s\S]*next: npm run db:migrate/);
      expect(
        await withPgClient(
          SUPERUSER_URL!,
          async (c) => (await c.query('select pg_get_userbyid(datdba) as owner from pg_database where datname = $1', [name])).rows,
        ),
      ).toEqual([{ owner: 'sheratan' }]);
      succeeded(await c.project.run(['db:migrate'], here));
    } finally {
      await withPgClient(SUPERUSER_URL!, (c) => c.query(`drop database if exists ${c.escapeIdentifier(name)} with (force)`));
    }
  },
  LONG,
);
