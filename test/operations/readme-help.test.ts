// The README and the commands' --help agree (issue 32: `db:bootstrap
// --no-createdb`'s help and the README disagreed): every option the README
// passes to a command (`npm run X -- --opt`, `bin/sheratan X --opt`) is in
// that command's usage.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { CLI } from '../support/processes.ts';

const env = { ...process.env, DATABASE_URL: '', SHERATAN_DATA_DIR: '/nonexistent/sheratan-help-test', LOG_LEVEL: 'silent' };
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 30_000 });

test('every option the README gives a command is in its --help', () => {
  const commands = new Set([...cli().stdout.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((m) => m[1]!));
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const used = new Map<string, Set<string>>();
  for (const line of readme.split('\n')) {
    for (const m of line.matchAll(/(?:npm run(?: -s)?|bin\/sheratan) ([a-z][\w:-]*)([^`|;&)]*)/g)) {
      const [, command, rest] = m;
      if (!commands.has(command!)) continue;
      for (const option of rest!.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) {
        if (option[0] === '--help') continue;
        if (!used.has(command!)) used.set(command!, new Set());
        used.get(command!)!.add(option[0]);
      }
    }
  }
  expect(used.size).toBeGreaterThan(5);
  const missing: string[] = [];
  for (const [command, options] of used) {
    const usage = cli(command, '--help').stdout;
    for (const option of options) if (!new RegExp(`(?<![\\w-])${option}(?![\\w-])`).test(usage)) missing.push(`${command} ${option}`);
  }
  expect(missing).toEqual([]);
}, 120_000);

test('an option the README names in a paragraph about commands is in the usage of one of them', () => {
  const commands = [...cli().stdout.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((m) => m[1]!);
  const usage = new Map<string, string>();
  const usageOf = (c: string) => usage.get(c) ?? usage.set(c, cli(c, '--help').stdout).get(c)!;
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const wrong: string[] = [];
  for (const paragraph of readme.split(/\n\s*\n|\n(?=\s*(?:\d+\.|[-*]) )/)) {
    const named = commands.filter((c) => new RegExp(`(?:npm run(?: -s)? |bin/sheratan |\`)${c.replace(/[:]/g, '\\:')}(?![\\w:-])`).test(paragraph));
    if (!named.length) continue;
    for (const m of paragraph.matchAll(/`(--[a-z][a-z0-9-]*)/g)) {
      const option = m[1]!;
      if (option === '--help') continue;
      if (!named.some((c) => new RegExp(`(?<![\\w-])${option}(?![\\w-])`).test(usageOf(c)))) wrong.push(`${option} (paragraph about ${named.join(', ')})`);
    }
  }
  expect(wrong).toEqual([]);
}, 120_000);
