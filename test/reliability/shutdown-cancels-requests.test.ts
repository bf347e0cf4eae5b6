// At shutdown on a server the gateway cancels the statements of requests that
// did not finish (SHUTDOWN_GRACE_MS over, server-faults.test.ts), and only
// those: a connection of the API's pool that something else holds
// (PostGraphile's watch and introspection in `npm run dev`, the dimension
// refresh) is not a request. Counting every checked-out connection cancelled
// their statements and logged them as unfinished requests (seen in CI as a
// warning in `npm run dev`'s SIGINT output); so did counting every session of
// the requests' own transport, which PostGraphile's introspection uses too (a
// schema rebuild in flight at `npm run dev`'s SIGINT, seen again in CI): a
// request's session is one opened for the settings the GraphQL context made.
import { createEndpoints } from '../../src/http/endpoints.ts';
import { inspectVector } from '../../src/database/vector-column.ts';
import { openDatabase } from '../../src/database/connect.ts';
import { createTestDatabase, migrateTestDatabase, serverTest } from '../support/backend.ts';
import { testConfig } from '../support/database.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { withPgClientFromPgService } from 'postgraphile/@dataplan/pg';

serverTest('only a server cancels by process id; the embedded engine cannot interrupt a statement')(
  'closing the endpoints leaves a statement of a pool connection that no request holds to finish: it is not cancelled',
  async () => {
    const database = await createTestDatabase();
    try {
      const config = testConfig(database, {});
      await migrateTestDatabase(config);
      const db = await openDatabase(config, { purpose: 'test' });
      const endpoints = createEndpoints(config, db, await inspectVector(db.authUrl), {});
      // Held as PostGraphile's watch or an introspection holds one: checked out of the API's pool, not by a request.
      const client = await endpoints.apiPool.connect();
      const running = client.query('select pg_sleep(1.5) as slept').then(
        (r) => ({ rows: r.rows.length }),
        (err: Error & { code?: string }) => ({ code: err.code }),
      );
      const closing = endpoints.close();
      expect(await running).toEqual({ rows: 1 });
      client.release();
      await closing;
      await db.close();
    } finally {
      await database.drop();
    }
  },
  60_000,
);

serverTest('only a server cancels by process id; the embedded engine cannot interrupt a statement')(
  "closing the endpoints leaves a schema introspection to finish even though it runs through the requests' own transport: only sessions opened for a request's settings are requests",
  async () => {
    // `npm run dev` rebuilding its schema at SIGINT: PostGraphile introspects through the pg service's withPgClient,
    // the same one requests use, with pgSettingsForIntrospection (the endpoint's role, no claims).
    const database = await createTestDatabase();
    try {
      const config = testConfig(database, {});
      await migrateTestDatabase(config);
      const db = await openDatabase(config, { purpose: 'test' });
      const endpoints = createEndpoints(config, db, await inspectVector(db.authUrl), {});
      const service = endpoints.api.getResolvedPreset().pgServices![0]!;
      const running = withPgClientFromPgService(service, { role: APP_ROLE }, (client) => client.query({ text: 'select pg_sleep(1.5) as slept' })).then(
        (r) => ({ rows: r.rows.length }),
        (err: Error & { code?: string }) => ({ code: err.code }),
      );
      // Its session is open before the endpoints close.
      await new Promise((r) => setTimeout(r, 300));
      const closing = endpoints.close();
      expect(await running).toEqual({ rows: 1 });
      await closing;
      await db.close();
    } finally {
      await database.drop();
    }
  },
  60_000,
);
