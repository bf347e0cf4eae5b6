// The benchmarks on a server without JWT_SECRET (issue 32): one line naming
// the variable and the way out, exit 1, before anything is started, instead
// of jsonwebtoken's stack ("secretOrPrivateKey must have a value").
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/config/paths.ts';

// Nothing listens there: the check comes before any connection.
const env = { ...process.env, DATABASE_URL: 'postgresql://owner:pw@127.0.0.1:1/nowhere', JWT_SECRET: '', AUTH_DATABASE_URL: '', LOG_LEVEL: 'silent' };

test.each(['bench/run.ts', 'bench/floor.ts'])('%s without JWT_SECRET on a server: one line, exit 1', (program) => {
  const run = spawnSync(process.execPath, [path.join(projectRoot, program), '--quick'], { cwd: projectRoot, env, encoding: 'utf8', timeout: 60_000 });
  expect(run.status).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toBe(
    "bench: JWT_SECRET must be set on a server (DATABASE_URL): the benchmark signs its tokens with the gateway's secret, e.g. JWT_SECRET=$(openssl rand -hex 32) npm run bench\n",
  );
});

test('an invalid variable is one line too', () => {
  const run = spawnSync(process.execPath, [path.join(projectRoot, 'bench/run.ts'), '--quick'], {
    cwd: projectRoot,
    env: { ...env, DB_POOL_SIZE: 'many' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(run.status).toBe(1);
  expect(run.stderr).toMatch(/^bench: DB_POOL_SIZE .*\n$/);
});
