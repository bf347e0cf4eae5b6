// Shared test set-up: one database per test file (an embedded engine in its
// own temp data directory, or a fresh database on TEST_DATABASE_URL's server;
// see backend.ts), migrated to head, with the gateway on an ephemeral port.
import pg from 'pg';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { type ApiRole } from '../../src/config/roles.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { createTestDatabase, migrateTestDatabase, SERVER_JWT_SECRET, type TestDatabase } from './backend.ts';

export { tempDataDir } from './backend.ts';

process.env.GRAPHILE_ENV ??= 'test';

export interface Harness {
  config: Config;
  gateway: RunningGateway;
  url: string;
  ownerUrl: string;
  /** The database under test (its env reaches CLI processes: `cliEnv`). */
  database: TestDatabase;
  /** Environment for a `sheratan` command on this database. */
  cliEnv: Record<string, string>;
  token(role?: ApiRole, tenant?: string, sub?: string): string;
  graphql<T = Record<string, unknown>>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string | null; path?: string },
  ): Promise<{ status: number; body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } }>;
  /** A client on the owner connection (superuser in embedded mode, an ordinary role on a server). */
  owner(): Promise<pg.Client>;
  /**
   * Runs `fn` in a transaction on the gateway's own login (the authenticator)
   * as `role` with the given tenant claim, as a request would; rolled back after.
   */
  asRole<T>(role: string, tenant: string, fn: (client: pg.Client) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in a transaction on the owner connection, rolled back after
   * (graphile/starter's withRootDb): what it writes is seen by nothing else.
   */
  withRootDb<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const database = await createTestDatabase();
  // A production gateway refuses to start without its secrets (assertReadyToServe); a test that is not about them gets these.
  const secrets = env.NODE_ENV === 'production' ? { JWT_SECRET: SERVER_JWT_SECRET, METRICS_TOKEN: 'sheratan-test-metrics-token' } : {};
  const config = parseConfig({ ...database.env, ...secrets, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  let gateway: RunningGateway;
  try {
    await migrateTestDatabase(config);
    gateway = await startGateway(config, { port: 0 });
  } catch (err) {
    await database.drop();
    throw err;
  }
  const clients: pg.Client[] = [];
  const harness: Harness = {
    config: gateway.config,
    gateway,
    url: gateway.url,
    ownerUrl: gateway.db.ownerUrl,
    database,
    cliEnv: { ...database.env, LOG_LEVEL: 'silent' },
    token: (role = APP_ROLE, tenant = 'acme', sub = 'alice') => signToken(gateway.config.jwtSecret!, { role, tenant, sub }),
    async graphql(query, options = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const token = options.token === undefined ? harness.token() : options.token;
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`${gateway.url}${options.path ?? '/graphql'}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query, variables: options.variables }),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    async owner() {
      const client = new pg.Client(gateway.db.ownerUrl);
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      return client;
    },
    asRole: (role, tenant, fn) =>
      rolledBack(gateway.db.authUrl, async (client) => {
        await client.query("select set_config('role', $1, true), set_config('jwt.claims.tenant', $2, true)", [role, tenant]);
        return fn(client);
      }),
    withRootDb: (fn) => rolledBack(gateway.db.ownerUrl, fn),
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await gateway.stop();
      await database.drop();
    },
  };
  return harness;
}

/** Runs `fn` in a transaction on a new connection to `url`, rolled back (and the connection closed) after. */
async function rolledBack<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(url);
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('begin');
    return await fn(client);
  } finally {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  }
}
