// A data directory's lock ends with its holder (issue 32: a restart right
// after `kill -9` of `npm start`'s process group was refused, "in use by
// process N (gateway)" for a process already killed, 2 of 2 tries; and
// `doctor` run the moment `npm start` had exited was refused the same way).
// Real processes on both backends (a server has no data directory lock: the
// same steps must simply work there too).
import { spawn } from 'node:child_process';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { createTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { freePort, runCli, startGatewayProcess, waitFor } from '../support/processes.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
}, 300_000);
afterAll(() => db.drop());

test('kill -9 of npm start’s process group, then npm start again at once: it serves', async () => {
  const port = await freePort();
  // `npm start` as a terminal runs it: its own process group (npm, and the gateway it execs).
  const npm = spawn('npm', ['start'], {
    cwd: projectRoot,
    env: { ...process.env, ...db.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 120_000, `npm start ready:\n${output}`);
  } finally {
    process.kill(-npm.pid!, 'SIGKILL');
  }
  await exited;
  // The gateway died with the group: its port closes.
  await waitFor(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`).then(
        () => false,
        () => true,
      ),
    30_000,
    'the killed gateway’s port closed',
  );
  const again = await startGatewayProcess(db.env);
  again.child.kill('SIGTERM');
  expect((await again.exited).code).toBe(0);
}, 300_000);

test('doctor the moment npm start has exited runs on the database, not refused as in use', async () => {
  const gateway = await startGatewayProcess(db.env);
  gateway.child.kill('SIGTERM');
  expect((await gateway.exited).code).toBe(0);
  const doctor = runCli(['doctor'], { ...db.env, LOG_LEVEL: 'warn' });
  await doctor.exited;
  expect(doctor.output()).not.toMatch(/in use by process/);
  // Its checks ran against the database (the connection is the first of them).
  expect(doctor.output()).toMatch(/✓ .*connect/i);
}, 300_000);
