// The small surprises of issue 32: bin/sheratan on a Node too old for the
// TypeScript sources says so in one line; `bin/sheratan token` prints the token
// alone (TOKEN=$(bin/sheratan token …) needs no `npm run -s`); backups are
// ignored by git.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { createTestDatabase, type TestDatabase } from '../support/backend.ts';

const BIN = path.join(projectRoot, 'bin', 'sheratan');
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

// The machine's own Node, when it is older than 22.18 (the system's Node 20 here), else a fake that says it is 20.
const OLD_NODE = (() => {
  const system = '/usr/bin/node';
  const v = existsSync(system) ? spawnSync(system, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
  const [major, minor] = v.replace(/^v/, '').split('.').map(Number);
  return v && (major! < 22 || (major === 22 && minor! < 18)) ? system : path.join(projectRoot, 'test', 'support', 'fake-old-node.sh');
})();

test('bin/sheratan on a Node older than 22.18 is one line naming the version and the way out, exit 1, no stack', () => {
  const run = spawnSync(BIN, ['--help'], { env: { ...process.env, SHERATAN_NODE: OLD_NODE }, encoding: 'utf8' });
  expect(run.status).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^sheratan: Node \d+\.\d+\.\d+ cannot run the TypeScript sources \(Node 22\.18 or later strips types\); run npm install .*\n$/);
  expect(run.stderr.split('\n')).toHaveLength(2);
});

test('bin/sheratan token prints the token and nothing else', () => {
  const run = spawnSync(BIN, ['token', '--tenant', 'acme', '--sub', 'me'], { env: { ...process.env, ...db.env, LOG_LEVEL: 'info' }, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
});

test('backups/ (npm run backup’s default BACKUP_DIR: every tenant’s data) is ignored by git', () => {
  const run = spawnSync('git', ['check-ignore', '--quiet', 'backups/sheratan-backup-20261203-000000.sql'], { cwd: projectRoot });
  expect(run.status).toBe(0);
});
