// A migrated test database on the current backend without a gateway, for
// tests of SQL behaviour (row-level security and grants per role and tenant,
// the search functions in SQL, the job functions, private functions, the
// catalog): no schema is built and nothing listens for HTTP. On the embedded
// engine this process serves the engine (as a gateway would) and migrates it;
// on a server the fresh database is migrated as `npm run db:migrate` does.
// The SQL helpers (`owner`, `asRole`, `withRootDb`) are the same ones
// harness.ts gives its tests, which have a gateway too.
import pg from 'pg';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { openDatabase, type Database } from '../../src/database/connect.ts';
import { createTestDatabase, migrateOpenDatabase, SERVER_JWT_SECRET, TEST_ENGINE_ENV, type TestDatabase } from './backend.ts';

process.env.GRAPHILE_ENV ??= 'test';

/** What a test of SQL needs of its database, with or without a gateway. */
export interface DatabaseAccess {
  config: Config;
  /** The open database: its connection strings (and, embedded, the engine this process serves). */
  db: Database;
  ownerUrl: string;
  /** The database under test (its env reaches CLI processes: `cliEnv`). */
  database: TestDatabase;
  /** Environment for a `sheratan` command on this database. */
  cliEnv: Record<string, string>;
  /** A client on the owner connection (superuser in embedded mode, an ordinary role on a server); ended by close/stop. */
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
}

/** A migrated database and nothing else (`startDatabase`). */
export interface TestDb extends DatabaseAccess {
  /** Ends the owner clients, closes the database (embedded: stops the engine) and drops it. */
  close(): Promise<void>;
}

/** The configuration a test database runs with: its env, the engine in a child process (TEST_ENGINE_ENV), silent logs, a production gateway's secrets, then `env`. */
export function testConfig(database: TestDatabase, env: Record<string, string>): Config {
  // A production gateway refuses to start without its secrets (assertReadyToServe); a test that is not about them gets these.
  const secrets = env.NODE_ENV === 'production' ? { JWT_SECRET: SERVER_JWT_SECRET, METRICS_TOKEN: 'sheratan-test-metrics-token' } : {};
  return parseConfig({ ...database.env, ...TEST_ENGINE_ENV, ...secrets, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
}

/** The SQL helpers on an open database; `endClients` ends what `owner()` opened. */
export function databaseAccess(config: Config, db: Database, database: TestDatabase): { access: DatabaseAccess; endClients: () => Promise<void> } {
  const clients: pg.Client[] = [];
  const access: DatabaseAccess = {
    config,
    db,
    ownerUrl: db.ownerUrl,
    database,
    cliEnv: { ...database.env, LOG_LEVEL: 'silent' },
    async owner() {
      const client = new pg.Client(db.ownerUrl);
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      return client;
    },
    asRole: (role, tenant, fn) =>
      rolledBack(db.authUrl, async (client) => {
        await client.query("select set_config('role', $1, true), set_config('jwt.claims.tenant', $2, true)", [role, tenant]);
        return fn(client);
      }),
    withRootDb: (fn) => rolledBack(db.ownerUrl, fn),
  };
  return { access, endClients: async () => void (await Promise.all(clients.map((c) => c.end().catch(() => undefined)))) };
}

/** A fresh database on the current backend, migrated to head, with no gateway (one per test file, in beforeAll). */
export async function startDatabase(env: Record<string, string> = {}): Promise<TestDb> {
  const database = await createTestDatabase();
  let db: Database | undefined;
  try {
    // Embedded, this process serves the engine, as a gateway would (CLI processes attach to it), from a
    // child process (testConfig's TEST_ENGINE_ENV).
    const config = testConfig(database, env);
    db = await openDatabase(config, { purpose: 'test database', serve: true });
    await migrateOpenDatabase(config, db);
    const open = db;
    const { access, endClients } = databaseAccess(config, open, database);
    return {
      ...access,
      async close() {
        await endClients();
        await open.close();
        await database.drop();
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    await database.drop();
    throw err;
  }
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
