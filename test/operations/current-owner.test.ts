// One process applies migrations/current.sql on every save to a database
// (issue 32): `npm run dev` and `npm run db:watch` both did, so one said
// "current.sql unchanged, skipped" while the other applied the change (and so
// did graphile-migrate's own watch beside `npm run dev`). Now the second to
// start, in either order, says in one line which process (and command) has it
// and exits 1; a holder killed with SIGKILL leaves nothing that refuses the
// next one. Real processes, on both backends.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { backend, createTestDatabase, migrateTestDatabase, serverTest, type TestDatabase } from '../support/backend.ts';
import { CLI, freePort, runCli, waitFor, type CliProcess, type Exit } from '../support/processes.ts';

let db: TestDatabase;
const running: CliProcess[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
}, 300_000);
// Whatever a test left running is gone before the next starts (its claims and the engine's lock with it).
afterEach(async () => {
  const left = running.splice(0);
  for (const p of left) p.child.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
});
afterAll(async () => {
  rmSync(project, { recursive: true, force: true });
  await db.drop();
});

// graphile-migrate's own CLI runs in a project of its own (its .gmrc and a copy of the committed migrations).
const project = mkdtempSync(path.join(tmpdir(), 'sheratan-owner-gm-'));
cpSync(path.join(projectRoot, '.gmrc'), path.join(project, '.gmrc'));
cpSync(path.join(projectRoot, 'migrations'), path.join(project, 'migrations'), { recursive: true });
writeFileSync(path.join(project, 'migrations', 'current.sql'), '-- Enter migration here\n');

/** `eval "$(npm run -s db:env)"; npx graphile-migrate watch`, as the README says, in that project. */
function startGraphileMigrateWatch(): CliProcess {
  const env: Record<string, string | undefined> = { ...process.env, ...db.env, LOG_LEVEL: 'warn' };
  for (const name of ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'NODE_OPTIONS', 'SHERATAN_EMBEDDED_DATABASE_URL']) {
    if (!(name in db.env)) delete env[name];
  }
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}`;
  const bin = path.join(projectRoot, 'node_modules', '.bin', 'graphile-migrate');
  const child = spawn('bash', ['-c', `eval "$("${process.execPath}" "${CLI}" db:env)" && exec "${bin}" watch`], {
    cwd: project,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  const p = { child, output: () => out, exited };
  running.push(p);
  return p;
}

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
    `^(sheratan: )?${second.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: migrations/current\\.sql is already applied on every save to this database by process ${pid} \\(${first}\\b[^)]*\\); ` +
      'one process applies it at a time: stop that one first, or keep using it$',
  );

test('with npm run dev running, npm run db:watch says dev has current.sql (its pid) in one line and exits 1', async () => {
  const dev = await startDev();
  const watch = start('db:watch');
  const exit = await watch.exited;
  expect(exit.code).toBe(1);
  expect(watch.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('npm run db:watch', 'npm run dev', dev.child.pid!))]);
  dev.child.kill('SIGINT');
  expect((await dev.exited).code).toBe(0);
}, 300_000);

test('with npm run db:watch running, npm run dev says db:watch has it and exits 1; once db:watch is killed (-9), dev starts', async () => {
  const watch = await startWatch();
  const dev = start('dev', await freePort());
  const exit = await dev.exited;
  expect(exit.code).toBe(1);
  expect(dev.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('npm run dev', 'npm run db:watch', watch.child.pid!))]);

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
  expect(second.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('npm run db:watch', 'npm run db:watch', first.child.pid!))]);
}, 300_000);

test(
  backend === 'server'
    ? "with npm run dev running, graphile-migrate's own watch says dev has current.sql in one line and exits 1"
    : "with npm run dev running, graphile-migrate's own watch ends with one line (it cannot run on the embedded engine) and exit code 1",
  async () => {
    const dev = await startDev();
    const gm = startGraphileMigrateWatch();
    expect((await gm.exited).code).toBe(1);
    const expected =
      backend === 'server'
        ? refusal('npx graphile-migrate watch', 'npm run dev', dev.child.pid!)
        : /^graphile-migrate watch cannot run on the embedded engine: .*; use `npm run db:watch`/;
    expect(gm.output().trimEnd().split('\n')).toEqual([expect.stringMatching(expected)]);
    dev.child.kill('SIGINT');
    expect((await dev.exited).code).toBe(0);
  },
  300_000,
);

serverTest('graphile-migrate watch runs only on a server (embedded it is refused, above)')(
  'with graphile-migrate watch running, npm run dev says it has current.sql and exits 1',
  async () => {
    const gm = startGraphileMigrateWatch();
    await waitFor(() => /Running current\.sql|Finished/.test(gm.output()), 120_000, 'graphile-migrate watching').catch((err: Error) => {
      throw new Error(`${err.message}\n${gm.output()}`);
    });
    const dev = start('dev', await freePort());
    expect((await dev.exited).code).toBe(1);
    expect(dev.output().trimEnd().split('\n')).toEqual([expect.stringMatching(refusal('npm run dev', 'npx graphile-migrate watch', gm.child.pid!))]);
  },
  300_000,
);
