// graphile-migrate's own CLI works on both backends after one documented
// step, `eval "$(npm run -s db:env)"`: status (with its exit bitmap), commit,
// uncommit and migrate; `watch` works on a server, and on the embedded engine
// (whose one backend cannot serve its two-connection lock) fails within
// seconds naming `npm run db:watch` instead of hanging. (Without db:env the
// .gmrc's !ENV placeholders failed, and watch deadlocked for good.)
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend } from '../support/backend.ts';
import { CLI } from '../support/processes.ts';

let h: Harness;
let owner: pg.Client;
let project: string;
const GM = path.join(projectRoot, 'node_modules', 'graphile-migrate', 'dist', 'cli.js');

beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  // A project of its own (its .gmrc and a copy of the migrations), so that the repository's stay as they are.
  project = mkdtempSync(path.join(tmpdir(), 'sheratan-gm-cli-'));
  cpSync(path.join(projectRoot, '.gmrc'), path.join(project, '.gmrc'));
  cpSync(path.join(projectRoot, 'migrations'), path.join(project, 'migrations'), { recursive: true });
});
afterAll(async () => {
  rmSync(project, { recursive: true, force: true });
  await h.stop();
});

/** `eval "$(sheratan db:env)"; graphile-migrate <args>` in a shell, in the project; resolves when it exits or after `ms`. */
function gm(args: string, ms = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...h.cliEnv };
    for (const name of ['DATABASE_URL', 'SHADOW_DATABASE_URL', 'ROOT_DATABASE_URL', 'VECTOR_DIMENSION', 'TEXT_SEARCH_CONFIG']) {
      if (!(name in h.cliEnv)) delete env[name];
    }
    const script = `eval "$("${process.execPath}" "${CLI}" db:env)" && exec "${process.execPath}" "${GM}" ${args}`;
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

test('status, commit, uncommit and migrate through graphile-migrate\'s own CLI', async () => {
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
    : 'watch fails within seconds on the embedded engine, pointing to npm run db:watch, and the engine serves on',
  async () => {
    writeFileSync(current(), 'create table if not exists sheratan_private.gm_watch_probe (id int primary key);\n');
    const started = Date.now();
    const watch = gm('watch', 20_000);
    const result = await watch;
    const took = Date.now() - started;
    if (backend === 'server') {
      expect(result.output).toMatch(/Finished/);
      expect((await owner.query("select to_regclass('sheratan_private.gm_watch_probe') is not null as there")).rows).toEqual([{ there: true }]);
    } else {
      expect(result.output).toMatch(/graphile-migrate watch cannot run on the embedded engine: .* use `npm run db:watch`/);
      // It gives up by itself within seconds (the test's timer would stop it only after 20 s).
      expect(took).toBeLessThan(10_000);
    }
    expect((await h.graphql('{ allDocuments { totalCount } }')).status).toBe(200);
    writeFileSync(current(), '-- Enter migration here\n');
  },
  60_000,
);
