// graphile-migrate's own CLI works on both backends after one documented
// step, `eval "$(npm run -s db:env)"`: status (with its exit bitmap), commit,
// uncommit and migrate; `watch` works on a server, and on the embedded engine
// (whose one backend cannot serve its two-connection lock) ends with one line
// naming `npm run db:watch` and exit code 1: refused before it connects (the
// guard db:env loads into it), or, when it reached the engine anyway, told by
// the engine's refusal. (Without db:env the .gmrc's !ENV placeholders failed;
// watch deadlocked for good, later ended with an unhandled 'error' event and
// about 40 lines of stack.)
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend, embeddedTest } from '../support/backend.ts';
import { CLI } from '../support/processes.ts';

let h: Harness;
let owner: pg.Client;
let project: string;
const GM = path.join(projectRoot, 'node_modules', 'graphile-migrate', 'dist', 'cli.js');
/** What `npx graphile-migrate` runs: the package's bin link, under the node first on PATH. */
const GM_BIN = path.join(projectRoot, 'node_modules', '.bin', 'graphile-migrate');
const WATCH_REFUSAL = /^graphile-migrate watch cannot run on the embedded engine: .*; use `npm run db:watch` \(or `npm run dev`, which also serves the API\)/;

beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  // A project of its own (its .gmrc and a copy of the migrations), so that the repository's stay as they are.
  project = mkdtempSync(path.join(tmpdir(), 'sheratan-gm-cli-'));
  cpSync(path.join(projectRoot, '.gmrc'), path.join(project, '.gmrc'));
  cpSync(path.join(projectRoot, 'migrations'), path.join(project, 'migrations'), { recursive: true });
  // The committed migrations, without whatever work in progress the repository's current.sql holds.
  writeFileSync(path.join(project, 'migrations', 'current.sql'), '-- Enter migration here\n');
});
afterAll(async () => {
  rmSync(project, { recursive: true, force: true });
  await h.stop();
});

/**
 * `eval "$(sheratan db:env)"; graphile-migrate <args>` in a shell, in the
 * project (`then` runs after the eval, e.g. to unset something); resolves when
 * it exits or after `ms` (code null: it was stopped).
 */
function gm(args: string, ms = 60_000, { bin = false, then = 'true' } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...h.cliEnv };
    for (const name of ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'VECTOR_DIMENSION', 'TEXT_SEARCH_CONFIG']) {
      if (!(name in h.cliEnv)) delete env[name];
    }
    env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}`;
    const run = bin ? `"${GM_BIN}"` : `"${process.execPath}" "${GM}"`;
    const script = `eval "$("${process.execPath}" "${CLI}" db:env)" && ${then} && exec ${run} ${args}`;
    const child = spawn('bash', ['-c', script], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
const current = (): string => path.join(project, 'migrations', 'current.sql');

test("status, commit, uncommit and migrate through graphile-migrate's own CLI", async () => {
  const upToDate = await gm('status');
  expect(upToDate).toMatchObject({ code: 0 });
  writeFileSync(current(), 'create table if not exists sheratan_private.gm_cli_probe (id int primary key);\n');
  expect((await gm('status')).code).toBe(2); // current.sql has changes

  const committedBefore = readdirSync(path.join(project, 'migrations', 'committed')).length;
  const commit = await gm('commit --message "cli probe"');
  expect(commit.code).toBe(0);
  expect(readdirSync(path.join(project, 'migrations', 'committed'))).toHaveLength(committedBefore + 1);
  expect((await owner.query("select to_regclass('sheratan_private.gm_cli_probe') is not null as there")).rows).toEqual([{ there: true }]);
  expect((await gm('status')).code).toBe(0);

  expect((await gm('uncommit')).code).toBe(0);
  expect(readdirSync(path.join(project, 'migrations', 'committed'))).toHaveLength(committedBefore);
  expect(readFileSync(current(), 'utf8')).toMatch(/gm_cli_probe/);
  writeFileSync(current(), '-- Enter migration here\n');
  const migrate = await gm('migrate');
  expect(migrate.code).toBe(0);
  expect(migrate.output).toMatch(/up to date|migrations executed/i);
}, 180_000);

test(
  backend === 'server'
    ? 'watch runs current.sql on a server'
    : 'watch on the embedded engine ends with one line naming npm run db:watch and exit code 1, before it connects; the engine serves on',
  async () => {
    writeFileSync(current(), 'create table if not exists sheratan_private.gm_watch_probe (id int primary key);\n');
    // As a user runs it: `npx graphile-migrate watch` (the bin link under the first node on PATH).
    const result = await gm('watch', 20_000, { bin: true });
    if (backend === 'server') {
      expect(result.output).toMatch(/Finished/);
      expect((await owner.query("select to_regclass('sheratan_private.gm_watch_probe') is not null as there")).rows).toEqual([{ there: true }]);
    } else {
      // It ended by itself (the test's timer would have stopped it with code null), saying one line.
      expect(result.code).toBe(1);
      expect(result.output.trimEnd().split('\n')).toEqual([expect.stringMatching(WATCH_REFUSAL)]);
      expect((await owner.query("select to_regclass('sheratan_private.gm_watch_probe') is not null as there")).rows).toEqual([{ there: false }]);
    }
    expect((await h.graphql('{ allDocuments { totalCount } }')).status).toBe(200);
    writeFileSync(current(), '-- Enter migration here\n');
  },
  60_000,
);

embeddedTest("the guard refuses only watch on the embedded database: graphile-migrate's status still answers")(
  'with the guard loaded, status runs as usual on the embedded engine',
  async () => {
    const status = await gm('status', 60_000, { bin: true });
    expect(status).toMatchObject({ code: 0 });
  },
  60_000,
);

embeddedTest("the engine ends the watch itself when it reached the engine without the guard's refusal")(
  'watch that reaches the engine (DATABASE_URL not the one db:env marked) still ends with the one line and exit code 1',
  async () => {
    writeFileSync(current(), 'create table if not exists sheratan_private.gm_watch_probe2 (id int primary key);\n');
    // The guard is loaded but does not recognise the connection string: graphile-migrate runs
    // committed migrations, starts current.sql, and the engine ends its locking connection.
    const result = await gm('watch', 30_000, { then: 'unset SHERATAN_EMBEDDED_DATABASE_URL' });
    expect(result.code).toBe(1);
    expect(result.output).not.toMatch(/Unhandled 'error' event|at Parser\./);
    expect(result.output.trimEnd().split('\n').at(-1)).toMatch(WATCH_REFUSAL);
    expect((await h.graphql('{ allDocuments { totalCount } }')).status).toBe(200);
    writeFileSync(current(), '-- Enter migration here\n');
  },
  60_000,
);
