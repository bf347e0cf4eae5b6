// A command's own embedded engine runs in a child process (connect.ts), which
// tells the command when its database is closed (engine-process.ts): V8's
// abort (nodejs/node#64500) struck CI's commands as their engine stopped,
// after their work, and failed them. Now an abort after the close costs
// nothing (the command succeeds, its work is on disk), and one before it is
// still an error. The abort is process.abort() in the engine's process
// (test/support/abort-engine.ts), for each command that opens the database.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { embeddedTest } from '../support/backend.ts';

const onlyEmbedded = embeddedTest('a server backend has no engine process to abort');
const PRELOAD = path.join(projectRoot, 'test/support/abort-engine.ts');

function cli(dataDir: string, args: string[], abort?: 'after-close' | 'at-stop' | 'thread-end'): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [...(abort ? ['--import', PRELOAD] : []), path.join(projectRoot, 'src/cli.ts'), ...args], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH!, HOME: os.homedir(), SHERATAN_DATA_DIR: dataDir, EMBEDDING_PROVIDER: 'none', ...(abort ? { ABORT_ENGINE: abort } : {}) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-abort-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

onlyEmbedded(
  'an engine aborting after closing its database: db:migrate succeeds and its migrations are there',
  () => {
    const migrate = cli(dataDir, ['db:migrate'], 'after-close');
    expect(migrate.output).toMatch(/committed migrations executed/);
    expect(migrate.output).toMatch(/the embedded engine's process ended \(SIGABRT\) after closing its database/);
    expect(migrate.status).toBe(0);
    const again = cli(dataDir, ['db:status']);
    expect(again.status).toBe(0);
    expect(again.output).not.toMatch(/pending/i);
  },
  240_000,
);

onlyEmbedded(
  "an abort as the engine's thread ends, in a race with its process's other thread, comes after the close is said, every time",
  () => {
    // The thread is let go only once the 'closed' message is written (index.ts's stop, engine-process.ts): an abort
    // at its end cannot overtake it. Before, the thread ended as soon as the database closed, and the abort won the race.
    expect(cli(dataDir, ['db:migrate']).status).toBe(0);
    for (let i = 0; i < 5; i++) {
      const status = cli(dataDir, ['db:status'], 'thread-end');
      expect(status.output).toMatch(/the embedded engine's process ended \(SIGABRT\) after closing its database/);
      expect(status.status).toBe(0);
    }
  },
  240_000,
);

onlyEmbedded(
  'commands that only read (db:status) succeed too when the engine aborts after its close',
  () => {
    expect(cli(dataDir, ['db:migrate']).status).toBe(0);
    const status = cli(dataDir, ['db:status'], 'after-close');
    expect(status.status).toBe(0);
  },
  240_000,
);

onlyEmbedded(
  'an engine aborting before its database is closed is still an error the command reports',
  () => {
    const migrate = cli(dataDir, ['db:migrate'], 'at-stop');
    expect(migrate.status).not.toBe(0);
    expect(migrate.output).toMatch(/the embedded engine's process did not stop cleanly \(SIGABRT\)/);
    // What it committed before is kept: the next command finds the migrations applied.
    const status = cli(dataDir, ['db:status']);
    expect(status.status).toBe(0);
    expect(status.output).not.toMatch(/pending/i);
  },
  240_000,
);
