// A connection that fails names the setting it came from (issue 32: a wrong
// password named the role, not AUTH_DATABASE_URL). Every connection goes
// through pg.Client#connect (database/connect.ts), so each variable is broken
// in turn here, with the command that uses it first.
import { spawnSync } from 'node:child_process';
import { createTestDatabase, SUPERUSER_URL, serverTest, type TestDatabase } from '../support/backend.ts';
import { CLI } from '../support/processes.ts';
import { projectRoot } from '../../src/config/paths.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const wrongPassword = (url: string): string => {
  const u = new URL(url);
  u.password = 'not-the-password';
  return u.toString();
};

const cases = [
  ['db:migrate', 'DATABASE_URL'],
  ['doctor', 'DATABASE_URL'],
  ['start', 'AUTH_DATABASE_URL'],
  ['db:bootstrap', 'ROOT_DATABASE_URL'],
] as const;

serverTest('the embedded engine makes its own logins; a wrong password in a connection string is a server matter').each(cases)(
  '%s with a wrong password in %s names the variable',
  (command, variable) => {
    const env: Record<string, string> = { ...db.env, ROOT_DATABASE_URL: SUPERUSER_URL!, PORT: '0', LOG_LEVEL: 'silent' };
    env[variable] = wrongPassword(env[variable]!);
    const run = spawnSync(process.execPath, [CLI, command, ...(command === 'db:bootstrap' ? ['--dry-run'] : [])], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status).not.toBe(0);
    expect(`${run.stdout}${run.stderr}`).toContain(
      `password authentication failed for user "${new URL(env[variable]).username}" (connecting with ${variable}: check its user, password, host and database)`,
    );
  },
);
