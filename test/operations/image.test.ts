// The Dockerfile's steps without Docker: in a copy of the repository,
// `npm ci --omit=dev` from the committed lock, then `node src/cli.ts db:migrate`
// and `start` against the server, as the image and docker-compose run them.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';
import { createTestDatabase, serverTest, type TestDatabase } from '../support/backend.ts';
import { freePort, waitFor } from '../support/processes.ts';
import { spawn } from 'node:child_process';

let copy: string;
let db: TestDatabase | undefined;
afterAll(async () => {
  if (copy) rmSync(copy, { recursive: true, force: true });
  await db?.drop();
});

serverTest('the image runs against a server (docker-compose.yml); embedded, npm start is the front door')(
  'npm ci --omit=dev in a copy of the repository, then db:migrate and start work against the server',
  async () => {
    // What the Dockerfile copies: the tracked files (no node_modules, no data).
    copy = mkdtempSync(path.join(os.tmpdir(), 'sheratan-image-'));
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: projectRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of files) {
      mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
      cpSync(path.join(projectRoot, file), path.join(copy, file));
    }
    expect(readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8')).toMatch(/RUN npm ci --omit=dev/);
    const ci = spawnSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: copy, encoding: 'utf8', timeout: 240_000 });
    expect({ status: ci.status, stderr: ci.status ? ci.stderr : '' }).toEqual({ status: 0, stderr: '' });

    db = await createTestDatabase();
    // The image's node: the pinned runtime the lock installs (the Dockerfile's base image has its own 24).
    const node = path.join(copy, 'node_modules', '.bin', 'node');
    const env = { ...process.env, ...db.env, NODE_ENV: 'production', METRICS_TOKEN: 'sheratan-test-metrics-token', LOG_LEVEL: 'warn' };
    const migrate = spawnSync(node, ['src/cli.ts', 'db:migrate'], { cwd: copy, env, encoding: 'utf8', timeout: 120_000 });
    expect({ status: migrate.status, stderr: migrate.stderr }).toEqual({ status: 0, stderr: '' });

    const port = await freePort();
    const gateway = spawn(node, ['src/cli.ts', 'start'], { cwd: copy, env: { ...env, PORT: String(port) }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => gateway.once('exit', resolve));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000, 'the copy serves');
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
    } finally {
      gateway.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  },
  300_000,
);
