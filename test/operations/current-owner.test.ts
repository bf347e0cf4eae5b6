// One process applies migrations/current.sql on every save to a database
// (issue 32): `npm run dev` and `npm run db:watch` both did, so one said
// "current.sql unchanged, skipped" while the other applied the change. Now
// the second to start, in either order, says in one line which process (and
// command) has it and exits 1; a holder killed with SIGKILL leaves nothing
// that refuses the next one. Real processes, on both backends.
import { parseConfig } from '../../src/config/config.ts';
import { createTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { freePort, runCli, waitFor, type CliProcess } from '../support/processes.ts';

let db: TestDatabase;
const running: CliProcess[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
}, 300_000);
afterEach(() => {
  for (const p of running.splice(0)) p.child.kill('SIGKILL');
});
afterAll(() => db.drop());

function start(command: 'dev' | 'db:watch', port?: number): CliProcess {
  const p = runCli([command], { ...db.env, LOG_LEVEL: 'warn', ...(port ? { PORT: String(port), HOST: '127.0.0.1' } : {}) });
  running.push(p);
  return p;
}

/** `npm run dev` serving. */
async function startDev(): Promise<CliProcess> {
  const dev = start('dev', await freePort());
  await waitFor(
    () => {
      if (dev.child.exitCode !== null) throw new Error(`npm run dev exited (${dev.child.exitCode}):\n${dev.output()}`);
      return /Sheratan Store \(dev\) is serving/.test(dev.output());
    },
    120_000,
    'npm run dev serving',
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${dev.output()}`);
  });
  return dev;
}

/** `npm run db:watch` once it has run current.sql the first time (it claims current.sql before it opens the database). */
async function startWatch(): Promise<CliProcess> {
  const watch = start('db:watch');
  // Embedded: "current.sql applied/unchanged/failed"; a server: graphile-migrate's "Running current.sql".
  await waitFor(
    () => {
      if (watch.child.exitCode !== null) throw new Error(`npm run db:watch exited (${watch.child.exitCode}):\n${watch.output()}`);
      return /current\.sql/.test(watch.output());
    },
    120_000,
    'npm run db:watch watching',
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${watch.output()}`);
  });
  return watch;
}

const refusal = (second: string, first: string, pid: number): RegExp =>
  new RegExp(
    `^sheratan: npm run ${second}: migrations/current\\.sql is already applied on every save to this database by process ${pid} \\(npm run ${first}\\b[^)]*\\); ` +
      'one process applies it at a time: stop that one first, or keep using it$',
  );

test('with npm run dev running, npm run db:watch says dev has current.sql (its pid) in one line and exits 1', async () => {
  const dev = await startDev();
  const watch = start('db:watch');
  const exit = await watch.exited;
  expect(exit.code).toBe(1);
  expect(watch.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('db:watch', 'dev', dev.child.pid!))]);
  dev.child.kill('SIGINT');
  expect((await dev.exited).code).toBe(0);
}, 300_000);

test('with npm run db:watch running, npm run dev says db:watch has it and exits 1; once db:watch is killed (-9), dev starts', async () => {
  const watch = await startWatch();
  const dev = start('dev', await freePort());
  const exit = await dev.exited;
  expect(exit.code).toBe(1);
  expect(dev.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('dev', 'db:watch', watch.child.pid!))]);

  // The holder dies without a word: its claim goes with it (embedded: a lock of a dead process; a server: its connection).
  watch.child.kill('SIGKILL');
  await watch.exited;
  const next = await startDev();
  next.child.kill('SIGINT');
  expect((await next.exited).code).toBe(0);
}, 300_000);

test('two db:watch: the second says the first has current.sql and exits 1', async () => {
  const first = await startWatch();
  const second = start('db:watch');
  expect((await second.exited).code).toBe(1);
  expect(second.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('db:watch', 'db:watch', first.child.pid!))]);
}, 300_000);
