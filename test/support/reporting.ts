// The reporting surface's tests: a database migrated to head with the
// migration in progress (migrations/current.sql, whose `section reporting`
// holds the views) applied before the gateway starts, so both endpoints'
// schemas are built with the views (once current.sql is committed this
// changes nothing); reporting logins made as a user would, with
// `npm run db:reporting-login`, and dropped after on a server (roles are
// cluster-wide there; an embedded data directory goes with its test).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { withPgClient } from '../../src/database/connect.ts';
import { migrateWithCurrent } from './current-migration.ts';
import { setLogLevel } from '../../src/config/log.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { type ApiRole } from '../../src/config/roles.ts';
import { createTestDatabase, SUPERUSER_URL, TEST_ENGINE_ENV, type TestDatabase } from './backend.ts';

process.env.GRAPHILE_ENV ??= 'test';

export interface GraphQLAnswer<T> {
  status: number;
  body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

export interface ReportingLoginInfo {
  name: string;
  tenant: string;
  password: string;
  /** The owner's connection string with the login's name and password (both backends). */
  url: string;
}

export interface ReportingHarness {
  config: Config;
  gateway: RunningGateway;
  database: TestDatabase;
  ownerUrl: string;
  /** One owner connection, kept for the file (superuser embedded, an ordinary owner on a server). */
  owner(): Promise<pg.Client>;
  token(role: ApiRole, tenant: string): string;
  graphql<T = Record<string, unknown>>(
    query: string,
    options: { token: string; variables?: Record<string, unknown>; path?: string },
  ): Promise<GraphQLAnswer<T>>;
  /** A login made by `npm run db:reporting-login` (its name gets the process id: roles are cluster-wide on a server). */
  login(base: string, tenant: string): ReportingLoginInfo;
  stop(): Promise<void>;
}

export async function startReporting(env: Record<string, string> = {}): Promise<ReportingHarness> {
  const database = await createTestDatabase();
  const config = parseConfig({ ...database.env, ...TEST_ENGINE_ENV, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  setLogLevel(config.logLevel);
  let gateway: RunningGateway;
  try {
    await migrateWithCurrent(config);
    gateway = await startGateway(config, { port: 0 });
  } catch (err) {
    await database.drop();
    throw err;
  }
  let ownerClient: pg.Client | undefined;
  const logins: string[] = [];
  const h: ReportingHarness = {
    config: gateway.config,
    gateway,
    database,
    ownerUrl: gateway.db.ownerUrl,
    async owner() {
      if (!ownerClient) {
        ownerClient = new pg.Client(gateway.db.ownerUrl);
        ownerClient.on('error', () => undefined);
        await ownerClient.connect();
      }
      return ownerClient;
    },
    token: (role, tenant) => signToken(gateway.config.jwtSecret!, { role, tenant, sub: 'reporter' }),
    async graphql(query, options) {
      const res = await fetch(`${gateway.url}${options.path ?? '/reporting/graphql'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
        body: JSON.stringify({ query, variables: options.variables }),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    login(base, tenant) {
      const name = `${base}_${process.pid}`;
      const password = `${base}-password-0123`;
      const made = spawnSync(
        process.execPath,
        [path.join(projectRoot, 'src/cli.ts'), 'db:reporting-login', '--name', name, '--tenant', tenant, '--password', password],
        {
          // Creating a role needs a role-creating connection: on a server, the superuser for this one command.
          env: { ...process.env, ...database.env, LOG_LEVEL: 'silent', ...(SUPERUSER_URL ? { ROOT_DATABASE_URL: SUPERUSER_URL } : {}) },
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      if (made.status !== 0) throw new Error(`db:reporting-login failed (${made.status}): ${made.stderr}${made.stdout}`);
      logins.push(name);
      const url = new URL(gateway.db.ownerUrl);
      url.username = name;
      url.password = password;
      return { name, tenant, password, url: url.toString() };
    },
    async stop() {
      await ownerClient?.end().catch(() => undefined);
      if (SUPERUSER_URL && logins.length) {
        await withPgClient(database.superuserUrl!, async (c) => {
          for (const name of logins) {
            await c.query('delete from sheratan_private.tenant_logins where login_role = $1', [name]).catch(() => undefined);
            await c.query(`drop owned by ${c.escapeIdentifier(name)}`).catch(() => undefined);
          }
        });
      }
      await gateway.stop();
      await database.drop();
      if (SUPERUSER_URL && logins.length) {
        await withPgClient(SUPERUSER_URL, async (c) => {
          for (const name of logins) await c.query(`drop role if exists ${c.escapeIdentifier(name)}`).catch(() => undefined);
        });
      }
    },
  };
  return h;
}
