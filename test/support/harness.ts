// Shared test set-up: one database per test file (an embedded engine in its
// own temp data directory, or a fresh database on TEST_DATABASE_URL's server;
// see backend.ts), migrated to head, with the gateway on an ephemeral port.
// Tests that need no gateway use database.ts's startDatabase, whose SQL
// helpers (owner, asRole, withRootDb) this harness shares.
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { type ApiRole } from '../../src/config/roles.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { createTestDatabase, migrateTestDatabase } from './backend.ts';
import { databaseAccess, testConfig, type DatabaseAccess } from './database.ts';

export { tempDataDir } from './backend.ts';

export interface Harness extends DatabaseAccess {
  gateway: RunningGateway;
  url: string;
  token(role?: ApiRole, tenant?: string, sub?: string): string;
  graphql<T = Record<string, unknown>>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string | null; path?: string },
  ): Promise<{ status: number; body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } }>;
  stop(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const database = await createTestDatabase();
  // Embedded, the engine runs in a child process (testConfig's TEST_ENGINE_ENV, and why).
  const config = testConfig(database, env);
  let gateway: RunningGateway;
  try {
    await migrateTestDatabase(config);
    gateway = await startGateway(config, { port: 0 });
  } catch (err) {
    await database.drop();
    throw err;
  }
  const { access, endClients } = databaseAccess(gateway.config, gateway.db, database);
  const harness: Harness = {
    ...access,
    gateway,
    url: gateway.url,
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
    async stop() {
      await endClients();
      await gateway.stop();
      await database.drop();
    },
  };
  return harness;
}
