// Stopping `npm start` stops the gateway (issue 32): npm forwards SIGTERM to
// the script's process, which was `sh -c "node src/cli.ts start"`; sh died and
// the gateway ran on, orphaned, holding the data directory. The long-running
// scripts now `exec` node, so the signal reaches the gateway itself.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { createTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { freePort, waitFor } from '../support/processes.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
}, 300_000);
afterAll(() => db.drop());

test('every long-running npm script execs node, so that npm’s signals reach the process itself', () => {
  const scripts = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  for (const name of ['start', 'dev', 'worker', 'db:watch']) expect([name, scripts[name]]).toEqual([name, `exec node src/cli.ts ${name}`]);
});

test('SIGTERM to `npm start` stops the gateway: the port closes and nothing is left running', async () => {
  const port = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: projectRoot,
    env: { ...process.env, ...db.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}/readyz`;
  try {
    await waitFor(async () => (await fetch(url)).status === 200, 120_000, `npm start ready:\n${output}`);
    npm.kill('SIGTERM');
    await exited;
    // The gateway finishes in-flight work, then its port closes.
    await waitFor(
      async () => {
        try {
          await fetch(url);
          return false;
        } catch {
          return true;
        }
      },
      30_000,
      'the gateway stopped after npm start got SIGTERM',
    );
  } finally {
    npm.kill('SIGKILL');
  }
}, 300_000);
