// The command line tells people how to use it: `sheratan` lists every
// command (each an npm script), every command answers --help with its usage
// without touching a database, and a wrong option points to that help.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { CLI } from '../support/processes.ts';

// No database anywhere: --help must not need one.
const env = { ...process.env, DATABASE_URL: '', SHERATAN_DATA_DIR: '/nonexistent/sheratan-help-test', LOG_LEVEL: 'silent' };
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 30_000 });

const listed = (): string[] => {
  const out = cli().stdout;
  return [...out.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((m) => m[1]!);
};

test('sheratan alone lists every npm script that runs the CLI, each with a summary', () => {
  const scripts = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const viaCli = Object.entries(scripts)
    .map(([name, run]) => [name, run.replace(/^exec /, '')] as const) // long-running ones exec node (npm-signals.test.ts)
    .filter(([, run]) => run.startsWith('node src/cli.ts '))
    .map(([, run]) => run.slice('node src/cli.ts '.length));
  expect(viaCli.length).toBeGreaterThan(15);
  expect(listed().sort()).toEqual([...new Set(viaCli)].sort());
});

test.each(listed())('%s --help prints its usage and exits 0 without opening a database', (name) => {
  const run = cli(name, '--help');
  expect(run.status).toBe(0);
  expect(run.stderr).toBe('');
  expect(run.stdout).toMatch(/^(npm (start|run|test)|eval )/);
  expect(run.stdout.length).toBeGreaterThan(40);
});

test('an unknown option is refused naming it and pointing to --help; an unknown command lists the commands', () => {
  const wrong = cli('token', '--tenant', 'acme', '--rol', 'sheratan_app');
  expect(wrong.status).toBe(1);
  expect(wrong.stderr).toBe("sheratan: Unknown option '--rol' (npm run token -- --help)\n");
  const unknown = cli('db:migrat');
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toMatch(/^sheratan: unknown command "db:migrat"\n[\s\S]*db:migrate/);
});
