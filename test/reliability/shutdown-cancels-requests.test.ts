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
import { createEndpoints, type Endpoints } from '../../src/http/endpoints.ts';
import { inspectVector } from '../../src/database/vector-column.ts';
import { openDatabase } from '../../src/database/connect.ts';
import { createTestDatabase, migrateTestDatabase, serverTest } from '../support/backend.ts';
import { testConfig } from '../support/database.ts';
import { APP_ROLE } from '../../src/config/roles.ts';
import { withPgClientFromPgService } from 'postgraphile/@dataplan/pg';
import { waitFor } from '../support/processes.ts';

const SERVER_ONLY = 'only a server cancels by process id; the embedded engine cannot interrupt a statement';

/** A migrated database of its own and the endpoints over it; `holdAndClose` starts something, closes the endpoints, and says what became of it. */
async function withEndpoints(holdAndClose: (endpoints: Endpoints) => Promise<void>): Promise<void> {
  const database = await createTestDatabase();
  try {
    const config = testConfig(database, {});
    await migrateTestDatabase(config);
    const db = await openDatabase(config, { purpose: 'test' });
    await holdAndClose(createEndpoints(config, db, await inspectVector(db.authUrl), {}));
    await db.close();
  } finally {
    await database.drop();
  }
}

/** What became of a statement: its rows, or the SQLSTATE it failed with (57014: cancelled). */
const outcome = (running: Promise<{ rows: readonly unknown[] }>) =>
  running.then(
    (r) => ({ rows: r.rows.length }),
    (err: Error & { code?: string }) => ({ code: err.code }),
  );

serverTest(SERVER_ONLY)(
  'closing the endpoints leaves a statement of a pool connection that no request holds to finish: it is not cancelled',
  () =>
    withEndpoints(async (endpoints) => {
      // Held as PostGraphile's watch or an introspection holds one: checked out of the API's pool, not by a request.
      const client = await endpoints.apiPool.connect();
      const running = outcome(client.query('select pg_sleep(1.5) as slept'));
      const closing = endpoints.close();
      expect(await running).toEqual({ rows: 1 });
      client.release();
      await closing;
    }),
  60_000,
);

serverTest(SERVER_ONLY)(
  "closing the endpoints leaves a schema introspection to finish even though it runs through the requests' own transport: only sessions opened for a request's settings are requests",
  () =>
    withEndpoints(async (endpoints) => {
      // `npm run dev` rebuilding its schema at SIGINT: PostGraphile introspects through the pg service's withPgClient,
      // the same one requests use, with pgSettingsForIntrospection (the endpoint's role, no claims).
      const service = endpoints.api.getResolvedPreset().pgServices![0]!;
      const running = outcome(withPgClientFromPgService(service, { role: APP_ROLE }, (client) => client.query({ text: 'select pg_sleep(1.5) as slept' })));
      // Its statement is running before the endpoints close (seen by the server, not waited for by the clock).
      await waitFor(
        async () =>
          (
            await endpoints.apiPool.query<{ n: number }>(
              "select count(*)::int as n from pg_stat_activity where state = 'active' and query = 'select pg_sleep(1.5) as slept'",
            )
          ).rows[0]!.n === 1,
        10_000,
        'the introspection-like statement running',
      );
      const closing = endpoints.close();
      expect(await running).toEqual({ rows: 1 });
      await closing;
    }),
  60_000,
);
