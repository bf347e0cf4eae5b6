// db:bootstrap changes an existing role's password only when told to (issue
// 32): without --reset-password it leaves it (two-stores.test.ts); with
// --reset-password --dry-run it says it would reset it and changes nothing;
// with --reset-password it resets it, says so, and the new password logs in
// where the old one no longer does. On a store with roles of its own
// (DATABASE_ROLE_PREFIX): roles are cluster-wide, and the suite's other
// databases use the default ones.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SUPERUSER_URL, serverTest, TEST_EMBEDDING_ENV } from '../support/backend.ts';
import { onDatabase, withPgClient } from '../../src/database/connect.ts';
import { roleNames } from '../../src/config/roles.ts';
import { asLogin, runCliToEnd } from '../support/processes.ts';

const prefix = `reset_${randomBytes(3).toString('hex')}`;
const roles = roleNames(prefix);
const owner = `${prefix}_owner`;
const dbName = `sheratan_test_reset_${process.pid}_${randomBytes(3).toString('hex')}`;

const login = (user: string, password: string): string => asLogin(onDatabase(SUPERUSER_URL ?? 'postgresql://x@localhost/x', dbName), user, password);
const cli = runCliToEnd;

/** 'ok', or the SQLSTATE the login fails with. */
async function logsIn(url: string): Promise<string> {
  const client = new pg.Client(url);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

afterAll(async () => {
  if (!SUPERUSER_URL) return;
  await withPgClient(SUPERUSER_URL, async (c) => {
    for (const db of [dbName, `${dbName}_shadow`]) await c.query(`drop database if exists ${c.escapeIdentifier(db)} with (force)`);
    for (const role of [roles.authenticator, roles.app, roles.readonly, roles.anonymous, owner])
      await c.query(`drop role if exists ${c.escapeIdentifier(role)}`);
  });
});

serverTest('db:bootstrap sets up a server; the embedded engine has no roles to bootstrap')(
  'db:bootstrap --reset-password: --dry-run says it would reset and changes nothing; without --dry-run the new password logs in, the old one no longer',
  async () => {
    const first = `first-${randomBytes(6).toString('hex')}`;
    const second = `second-${randomBytes(6).toString('hex')}`;
    const env = (authPassword: string): Record<string, string> => ({
      DATABASE_URL: login(owner, `owner-${randomBytes(6).toString('hex')}`),
      AUTH_DATABASE_URL: login(roles.authenticator, authPassword),
      DATABASE_ROLE_PREFIX: prefix,
      ROOT_DATABASE_URL: SUPERUSER_URL!,
      ...TEST_EMBEDDING_ENV,
    });
    // The owner's password: the same in every run below.
    const base = env(first);
    const withAuth = (password: string) => ({ ...base, AUTH_DATABASE_URL: login(roles.authenticator, password) });

    const boot = await cli(['db:bootstrap'], base);
    expect(`exit ${boot.code}\n${boot.output}`).toMatch(/^exit 0\n/);
    expect(await logsIn(login(roles.authenticator, first))).toBe('ok');

    const dry = await cli(['db:bootstrap', '--reset-password', '--dry-run'], withAuth(second));
    expect(dry.output).toContain(`RESET ${roles.authenticator}'s password to the one in AUTH_DATABASE_URL (--reset-password;`);
    expect(dry.output).toContain('nothing was changed (--dry-run)');
    expect(await logsIn(login(roles.authenticator, first))).toBe('ok');
    expect(await logsIn(login(roles.authenticator, second))).toBe('28P01');

    const reset = await cli(['db:bootstrap', '--reset-password'], withAuth(second));
    expect(`exit ${reset.code}\n${reset.output}`).toMatch(/^exit 0\n/);
    expect(reset.output).toContain(`reset ${roles.authenticator}'s password to the one in AUTH_DATABASE_URL`);
    expect(await logsIn(login(roles.authenticator, second))).toBe('ok');
    expect(await logsIn(login(roles.authenticator, first))).toBe('28P01');
  },
  300_000,
);
