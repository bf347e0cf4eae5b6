// A copy of the project to run the CLI from, for commands that read or write
// the project's own files: db:watch, dev, db:status, db:commit and db:uncommit
// use migrations/current.sql and migrations/committed/, schema:export writes
// schema.graphql. The repository's files stay as they are (other work may have
// SQL in current.sql); the copy gets its own. The code is copied, not linked:
// Node resolves a linked module to its real path, and the CLI finds the
// project from where its code is (src/config/paths.ts). node_modules is linked.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import type { CliProcess, Exit } from './processes.ts';

/** What the CLI needs at run time, besides node_modules. */
const COPIED = ['src', 'plugins', 'migrations', 'bin', 'package.json', '.gmrc', 'tsconfig.json', 'schema.graphql', 'reporting.graphql'];

export interface ProjectCopy {
  root: string;
  /** migrations/current.sql of the copy. */
  currentSql: string;
  /** `sheratan <args>` from the copy, in the copy, with `env` on top of the test's environment. */
  cli(args: string[], env: Record<string, string>): CliProcess;
  /** The same, to its end: its exit code and everything it wrote. */
  run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }>;
  remove(): void;
}

/** A copy of the project whose current.sql is `currentSql` (empty by default). */
export function copyProject(currentSql = '-- Enter migration here\n'): ProjectCopy {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sheratan-project-'));
  for (const name of COPIED) cpSync(path.join(projectRoot, name), path.join(root, name), { recursive: true });
  symlinkSync(path.join(projectRoot, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  const currentFile = path.join(root, 'migrations', 'current.sql');
  writeFileSync(currentFile, currentSql);
  const cli = (args: string[], env: Record<string, string>): CliProcess => {
    const child = spawn(process.execPath, [path.join(root, 'src', 'cli.ts'), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // On 'close', not 'exit': by then everything it wrote has been read.
    const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, at: Date.now() })));
    return { child, output: () => out, exited };
  };
  return {
    root,
    currentSql: currentFile,
    cli,
    async run(args, env) {
      const proc = cli(args, env);
      const { code } = await proc.exited;
      return { code, output: proc.output() };
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
