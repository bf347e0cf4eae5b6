// `npm run dev` as users run it, on both backends (issue 31: the reload was
// tested only embedded, and there with the watcher called as a function):
// the process serves GraphQL, a save of migrations/current.sql shows in the
// schema without a restart, a broken save is reported and the last good
// schema keeps serving, and SIGINT stops it with exit 0. It runs from a copy
// of the project (support/project-copy.ts), whose current.sql is this test's.
import { writeFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/config.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { createTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { copyProject, type ProjectCopy } from '../support/project-copy.ts';
import { freePort, postOnce, waitFor, type CliProcess } from '../support/processes.ts';

const SECRET = 'cli-dev-test-secret-0123456789abcdef0123';
const token = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'dev' });

let db: TestDatabase;
let project: ProjectCopy;
let dev: CliProcess;
let url: string;

/** `npm run dev` from the project copy on `database`, once it says it serves. */
async function startDev(database: TestDatabase): Promise<{ dev: CliProcess; url: string }> {
  // On a server `npm run db:migrate` comes first (README); the embedded dev migrates at start.
  await migrateTestDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }));
  const port = await freePort();
  const at = `http://127.0.0.1:${port}`;
  const child = project.cli(['dev'], { ...database.env, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' });
  await waitFor(
    () => {
      if (child.child.exitCode !== null) throw new Error(`npm run dev exited ${child.child.exitCode}:\n${child.output()}`);
      return new RegExp(`Sheratan Store \\(dev\\) is serving ${at}/graphql`).test(child.output());
    },
    120_000,
    'npm run dev serving',
  );
  return { dev: child, url: at };
}

beforeAll(async () => {
  db = await createTestDatabase();
  project = copyProject('-- nothing yet\n');
  ({ dev, url } = await startDev(db));
}, 180_000);
afterAll(async () => {
  if (dev && dev.child.exitCode === null) {
    dev.child.kill('SIGKILL');
    await dev.exited;
  }
  project?.remove();
  await db?.drop();
});

const queryFields = async (): Promise<string[]> => {
  const reply = await postOnce(url, token, '{ __type(name: "Query") { fields { name } } }');
  return ((reply.body.data?.__type as { fields: Array<{ name: string }> } | undefined)?.fields ?? []).map((f) => f.name);
};
const table = (name: string): string =>
  `drop table if exists sheratan.${name};
   create table sheratan.${name} (id integer primary key, body text);
   comment on table sheratan.${name} is 'A table of the npm run dev test.';
   grant select on sheratan.${name} to sheratan_app;\n`;

test('saving current.sql changes the schema the running process serves, without a restart', async () => {
  expect(await queryFields()).not.toContain('allDevNotes');
  writeFileSync(project.currentSql, table('dev_notes'));
  await waitFor(async () => (await queryFields()).includes('allDevNotes'), 60_000, 'allDevNotes in the schema');
  expect((await postOnce(url, token, '{ allDevNotes { totalCount } }')).body).toEqual({ data: { allDevNotes: { totalCount: 0 } } });
}, 90_000);

test('a broken save is reported and the last good schema keeps serving', async () => {
  // A good save of its own first (the order is shuffled), then a broken one.
  writeFileSync(project.currentSql, table('dev_logs'));
  await waitFor(async () => (await queryFields()).includes('allDevLogs'), 60_000, 'allDevLogs in the schema');
  const before = dev.output().length;
  writeFileSync(project.currentSql, `${table('dev_logs')}create table sheratan.dev_broken (;\n`);
  await waitFor(() => /current\.sql failed .*syntax error/.test(dev.output().slice(before)), 60_000, 'the failure reported');
  expect((await postOnce(url, token, '{ allDevLogs { totalCount } }')).body).toEqual({ data: { allDevLogs: { totalCount: 0 } } });
  expect(dev.child.exitCode).toBeNull();
}, 90_000);

test('SIGINT stops it: it says so and exits 0', async () => {
  // A process of its own (the other tests' keeps serving, whatever the order).
  const database = await createTestDatabase();
  try {
    const own = await startDev(database);
    own.dev.child.kill('SIGINT');
    expect((await own.dev.exited).code).toBe(0);
    expect(own.dev.output()).toMatch(/Sheratan Store \(dev\): SIGINT, stopping\nSheratan Store \(dev\) stopped\n$/);
  } finally {
    await database.drop();
  }
}, 180_000);
