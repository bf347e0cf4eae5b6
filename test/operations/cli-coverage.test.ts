// Every command of the `sheratan` CLI (src/commands/registry.ts, as
// `sheratan` alone lists them) has a test that runs it as users do: as a
// process, `node src/cli.ts <command>` (or bin/sheratan, or a shell running
// it). Issue 31 found db:reset, db:watch, db:bootstrap and index:tune tested
// only as functions. A new command without such a test fails here; so does a
// test file below that stops running its command. (--help alone does not
// count: cli-help.test.ts runs every command that way.)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { CLI } from '../support/processes.ts';

/** Command → the test file(s) that run it as a process. */
const PROCESS_TESTS: Record<string, string[]> = {
  start: ['test/reliability/faults.test.ts', 'test/foundation/config.test.ts'],
  dev: ['test/operations/cli-dev.test.ts'],
  'db:migrate': ['test/operations/cli-database.test.ts', 'test/operations/two-stores.test.ts'],
  'db:bootstrap': ['test/operations/cli-database.test.ts', 'test/operations/two-stores.test.ts'],
  'db:watch': ['test/operations/cli-database.test.ts'],
  'db:commit': ['test/operations/cli-migration-history.test.ts'],
  'db:uncommit': ['test/operations/cli-migration-history.test.ts'],
  'db:reset': ['test/operations/cli-migration-history.test.ts'],
  'db:status': ['test/operations/cli-database.test.ts'],
  'db:url': ['test/operations/embedded-url.test.ts'],
  'db:env': ['test/operations/graphile-migrate-cli.test.ts'],
  'db:psql': ['test/operations/cli-database.test.ts'],
  'db:reporting-login': ['test/security/reporting-login.test.ts'],
  token: ['test/security/auth.test.ts', 'test/operations/bin-sheratan.test.ts'],
  'schema:export': ['test/operations/cli-database.test.ts'],
  'trusted-documents': ['test/security/trusted-documents.test.ts'],
  'audit:cleanup': ['test/security/tenancy-sql.test.ts'],
  'index:tune': ['test/operations/cli-index-tune.test.ts', 'test/operations/index-progress.test.ts'],
  'embeddings:migrate': ['test/search/model-switch.test.ts'],
  worker: ['test/embedding/pipeline-worker.test.ts'],
  doctor: ['test/operations/doctor.test.ts'],
  backup: ['test/operations/backup.test.ts'],
  restore: ['test/operations/backup.test.ts'],
};

/** The commands `sheratan` lists, from the CLI itself. */
function registered(): string[] {
  const run = spawnSync(process.execPath, [CLI], { env: { ...process.env, LOG_LEVEL: 'silent' }, encoding: 'utf8', timeout: 30_000 });
  expect(run.status).toBe(0);
  return [...run.stdout.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((m) => m[1]!);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Whether `source` runs `command` as a process: the command as the first
 * argument after the CLI's path or at the start of an argument list
 * (`runCli(['db:reset', …])`, `[CLI, 'doctor', …]`, `'src/cli.ts'), 'token'`),
 * or after the CLI's path in a shell line (`"${CLI}" db:env`), in a file that
 * starts the CLI (src/cli.ts, bin/sheratan, or a helper that does).
 */
function runsAsProcess(source: string, command: string): boolean {
  const launches = /src\/cli\.ts|\bCLI\b|\bBIN\b|runCli\(|startGatewayProcess\(|copyProject\(|startCliDatabase\(/.test(source);
  const c = escape(command);
  const argv = new RegExp(`\\[\\s*'${c}'|(cli\\.ts'\\)|\\bCLI|\\bBIN),\\s*\\[?\\s*'${c}'|\\$\\{CLI\\}" ${c}\\b`);
  return launches && argv.test(source);
}

test('the table names exactly the commands the CLI has', () => {
  expect(Object.keys(PROCESS_TESTS).sort()).toEqual(registered().sort());
});

test.each(Object.entries(PROCESS_TESTS))('%s is run as a process by %p', (command, files) => {
  expect(files.length).toBeGreaterThan(0);
  for (const file of files) {
    const full = path.join(projectRoot, file);
    expect([file, existsSync(full)]).toEqual([file, true]);
    expect([file, runsAsProcess(readFileSync(full, 'utf8'), command)]).toEqual([file, true]);
  }
});

test('the check itself: a call of the function is not a process, --help is not a run', () => {
  expect(runsAsProcess('await gm.reset(settings); // db:reset', 'db:reset')).toBe(false);
  expect(runsAsProcess("spawnSync(process.execPath, [CLI, name, '--help'])", 'db:reset')).toBe(false);
  expect(runsAsProcess("runCli(['db:reset', '--erase'], env)", 'db:reset')).toBe(true);
  expect(runsAsProcess("spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor', '--json'])", 'doctor')).toBe(true);
  expect(runsAsProcess("runCli(['db:url'], env)", 'db')).toBe(false);
});
