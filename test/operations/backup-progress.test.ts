// backup and restore show their progress (issue 32): JSON lines on stderr when
// not on a terminal (info log lines: LOG_LEVEL=silent keeps them out), ending
// with the size written or loaded; restore knows its total, so it has an ETA.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, type Harness } from '../support/harness.ts';
import { createTestDatabase, SERVER_JWT_SECRET, type TestDatabase } from '../support/backend.ts';
import { projectRoot } from '../../src/config/paths.ts';

let h: Harness;
let empty: TestDatabase;
const dir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-backup-progress-'));
beforeAll(async () => {
  h = await startHarness();
  empty = await createTestDatabase();
}, 300_000);
afterAll(async () => {
  await h.stop();
  await empty.drop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (env: Record<string, string>, args: string[]) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
const progressLines = (stderr: string, task: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.task === task);

test('backup, then restore into an empty database: each says how far it is, from the first line to the last', async () => {
  await h.graphql('mutation { ingestDocument(input: { title: "progress", chunks: [{ content: "a" }, { content: "b" }] }) { clientMutationId } }');
  const file = path.join(dir, 'dump.sql');
  const dumped = cli({ ...h.cliEnv, LOG_LEVEL: 'info' }, ['backup', '--out', file]);
  expect(dumped.status).toBe(0);
  const backup = progressLines(dumped.stderr, 'backup');
  expect(backup[0]).toMatchObject({ msg: 'backup: in progress', unit: 'bytes', done: 0 });
  expect(backup.at(-1)).toMatchObject({ msg: 'backup: done', finished: true });
  // The last line counts what pg_dump (or the engine) wrote, before the fingerprint line is added.
  expect(backup.at(-1)!.done as number).toBeGreaterThan(1000);
  expect(backup.at(-1)!.done as number).toBeLessThanOrEqual(statSync(file).size);

  const restored = cli({ ...empty.env, JWT_SECRET: SERVER_JWT_SECRET, LOG_LEVEL: 'info' }, ['restore', file]);
  expect(restored.status).toBe(0);
  const restore = progressLines(restored.stderr, 'restore');
  expect(restore[0]).toMatchObject({ msg: 'restore: in progress', done: 0, unit: 'bytes' });
  expect(restore.some((l) => typeof l.total === 'number' && (l.total as number) > 1000)).toBe(true);
  expect(restore.at(-1)).toMatchObject({ finished: true, percent: 100 });
  expect(restore.at(-1)!.done).toBe(restore.at(-1)!.total);

  // LOG_LEVEL=silent (or warn): no progress lines at all.
  const quiet = cli({ ...h.cliEnv, LOG_LEVEL: 'warn' }, ['backup', '--out', path.join(dir, 'quiet.sql')]);
  expect(quiet.status).toBe(0);
  expect(quiet.stderr).toBe('');
}, 600_000);
