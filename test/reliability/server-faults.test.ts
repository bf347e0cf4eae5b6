// Faults of a real PostgreSQL server under a running gateway process (issue
// 31: these were tested on the embedded engine only, or not at all):
// - the server going away and coming back, on a cluster of this file's own
//   (support/fault-cluster.ts), since the shared test server must stay up:
//   GraphQL answers DATABASE_UNAVAILABLE and /readyz 503 meanwhile, and the
//   pool reconnects by itself afterwards;
// - the gateway's backend terminated (pg_terminate_backend) in the middle of a
//   request: a clear error, and the next request works;
// - a request running past STATEMENT_TIMEOUT_MS: cancelled with 57014;
// - every connection of the pool busy for DB_POOL_TIMEOUT_MS: 503 POOL_EXHAUSTED;
// - SIGTERM with a request stuck in the database: the process ends once
//   SHUTDOWN_GRACE_MS is over.
// A request is held in the database by the owner's lock on documents, so
// "in flight" is a state the test sees (pg_stat_activity), not a sleep.
// The embedded engine's counterparts are in faults.test.ts, observability.test.ts
// and statement-timeout.test.ts.
import pg from 'pg';
import { parseConfig } from '../../src/config/config.ts';
import { withPgClient } from '../../src/database/connect.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { backend, createServerTestDatabase, createTestDatabase, migrateTestDatabase, serverTest, type TestDatabase } from '../support/backend.ts';
import { createFaultCluster, clusterTest as clusterTestFor, type FaultCluster } from '../support/fault-cluster.ts';
import { postOnce, startGatewayProcess, waitFor, type GatewayProcess, type Reply } from '../support/processes.ts';

/** Whole processes (and a cluster's creation). */
const LONG = 180_000;
const SECRET = 'server-faults-test-secret-0123456789abcdef';
const token = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'faults' });
const COUNT = '{ allDocuments { totalCount } }';
const INGEST = 'mutation ($title: String!) { ingestDocument(input: { title: $title, chunks: [{ content: "one chunk" }] }) { document { title } } }';

const databases: TestDatabase[] = [];
const gateways: GatewayProcess[] = [];
let cluster: FaultCluster | undefined;
afterAll(async () => {
  for (const gw of gateways) if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
  try {
    for (const db of databases) await db.drop().catch(() => undefined);
  } finally {
    cluster?.drop();
  }
}, LONG);

async function migrated(superuserUrl?: string): Promise<TestDatabase> {
  const db = superuserUrl ? await createServerTestDatabase(superuserUrl) : await createTestDatabase();
  databases.push(db);
  await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
  return db;
}

async function gateway(db: TestDatabase, env: Record<string, string>): Promise<GatewayProcess> {
  const gw = await startGatewayProcess({ ...db.env, JWT_SECRET: SECRET, LOG_LEVEL: 'warn', ...env });
  gateways.push(gw);
  return gw;
}

/** The owner, in a transaction holding documents: requests that read it wait in the database until `release`. */
async function holdDocuments(db: TestDatabase): Promise<{ release(): Promise<void> }> {
  const owner = new pg.Client(db.ownerUrl);
  owner.on('error', () => undefined);
  await owner.connect();
  await owner.query('begin');
  await owner.query('lock table sheratan.documents in access exclusive mode');
  return {
    async release() {
      await owner.query('commit').catch(() => undefined);
      await owner.end();
    },
  };
}

/** The gateway's backends waiting for a lock (seen by the superuser: others' wait events are hidden from the owner). */
const waitingBackends = (db: TestDatabase): Promise<number[]> =>
  withPgClient(db.superuserUrl!, async (c) =>
    (
      await c.query<{ pid: number }>(
        "select pid from pg_stat_activity where datname = current_database() and usename = 'sheratan_authenticator' and wait_event_type = 'Lock'",
      )
    ).rows.map((r) => r.pid),
  );

/** The pid of the gateway's backend once its request waits for the lock. */
async function blockedBackend(db: TestDatabase): Promise<number> {
  let pids: number[] = [];
  await waitFor(async () => (pids = await waitingBackends(db)).length === 1, 60_000, "the gateway's request waiting in the database");
  return pids[0]!;
}

const firstError = (reply: Reply) => reply.body.errors?.[0];

// Server only; on a server run skipped, saying why, only when no cluster can be made here.
const clusterTest = clusterTestFor('the embedded counterpart is in faults.test.ts');
clusterTest(
  'the server going away and coming back: DATABASE_UNAVAILABLE and /readyz 503 meanwhile, then the pool reconnects by itself',
  async () => {
    cluster = await createFaultCluster();
    const db = await migrated(cluster.superuserUrl);
    const gw = await gateway(db, { DB_POOL_TIMEOUT_MS: '3000' });
    expect((await postOnce(gw.url, token, INGEST, { title: 'before' })).body).toEqual({ data: { ingestDocument: { document: { title: 'before' } } } });

    cluster.stop();
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 503, 30_000, '/readyz reports the outage');
    const during = await postOnce(gw.url, token, COUNT);
    expect(during.status).toBeLessThan(500);
    expect(firstError(during)).toEqual({
      message: expect.stringMatching(/^the database is unavailable \((connection refused|connection lost)\); retry shortly$/),
      locations: expect.anything(),
      path: ['allDocuments', 'totalCount'],
      extensions: { code: 'DATABASE_UNAVAILABLE' },
    });
    const write = await postOnce(gw.url, token, INGEST, { title: 'during' });
    expect(firstError(write)?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    expect(gw.child.exitCode).toBeNull();

    cluster.start();
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 60_000, '/readyz recovers');
    // The pool made new connections: reads and writes work, and nothing of the outage was written.
    expect((await postOnce(gw.url, token, INGEST, { title: 'after' })).body).toEqual({ data: { ingestDocument: { document: { title: 'after' } } } });
    expect((await postOnce(gw.url, token, '{ allDocuments(first: 10, orderBy: CREATED_AT_ASC) { nodes { title } } }')).body).toEqual({
      data: { allDocuments: { nodes: [{ title: 'before' }, { title: 'after' }] } },
    });
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);
  },
  LONG,
);

describe('on the shared test server', () => {
  let db: TestDatabase;
  let gw: GatewayProcess;
  // One connection, so that one held request is the whole pool; no statement timeout, so that only the test ends a wait.
  const ENV = { DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', DB_POOL_TIMEOUT_MS: '3000', STATEMENT_TIMEOUT_MS: '0', SHUTDOWN_GRACE_MS: '1000' };
  beforeAll(async () => {
    if (backend !== 'server') return;
    db = await migrated();
    gw = await gateway(db, ENV);
  }, LONG);

  serverTest('pg_terminate_backend is a server operation; the embedded engine has one backend')(
    "the gateway's backend terminated in the middle of a request: DATABASE_UNAVAILABLE for it, and the next request works (ten times over)",
    async () => {
      // Ten times: the process once died now and then here (its connection's
      // 'error' event came while a request still had it, with no listener).
      for (let round = 0; round < 10; round++) {
        const hold = await holdDocuments(db);
        let reply: Reply;
        try {
          const inFlight = postOnce(gw.url, token, COUNT).catch((err: Error) => err);
          const pid = await blockedBackend(db);
          await withPgClient(db.superuserUrl!, (c) => c.query('select pg_terminate_backend($1)', [pid]));
          const answer = await inFlight;
          if (answer instanceof Error) throw new Error(`round ${round}: no answer (${answer.message}); the gateway said:\n${gw.output()}`);
          reply = answer;
        } finally {
          await hold.release();
        }
        expect(reply.status).toBeLessThan(500);
        expect(firstError(reply)).toMatchObject({
          message: 'the database is unavailable (connection lost); retry shortly',
          extensions: { code: 'DATABASE_UNAVAILABLE' },
        });
        const next = await postOnce(gw.url, token, COUNT).catch((err: Error) => {
          throw new Error(`round ${round}: the next request had no answer (${err.message}); the gateway said:\n${gw.output()}`);
        });
        expect(next.body).toEqual({ data: { allDocuments: { totalCount: 0 } } });
      }
    },
    LONG,
  );

  serverTest('the embedded engine cannot interrupt a statement (statement-timeout.test.ts)')(
    'a request running past STATEMENT_TIMEOUT_MS is cancelled with 57014, and the next request works',
    async () => {
      const timed = await gateway(db, { STATEMENT_TIMEOUT_MS: '2000' });
      const hold = await holdDocuments(db);
      let reply: Reply;
      try {
        // The lock is held until the reply: only the statement timeout can end this request.
        reply = await postOnce(timed.url, token, COUNT);
      } finally {
        await hold.release();
      }
      expect(reply.status).toBe(200);
      expect(reply.body.data).toEqual({ allDocuments: null });
      expect(firstError(reply)).toMatchObject({ message: 'canceling statement due to statement timeout', extensions: { code: '57014' } });
      expect((await postOnce(timed.url, token, COUNT)).body).toEqual({ data: { allDocuments: { totalCount: 0 } } });
      timed.child.kill('SIGTERM');
      expect((await timed.exited).code).toBe(0);
    },
    LONG,
  );

  serverTest('the embedded engine answers DATABASE_BUSY for its one backend (observability.test.ts)')(
    'every connection busy for DB_POOL_TIMEOUT_MS: 503 POOL_EXHAUSTED with Retry-After; the held request then completes',
    async () => {
      const hold = await holdDocuments(db);
      let first: Promise<Reply>;
      let second: Response;
      try {
        first = postOnce(gw.url, token, COUNT);
        await blockedBackend(db);
        second = await fetch(`${gw.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: COUNT }),
        });
      } finally {
        await hold.release();
      }
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(await second.json()).toEqual({
        errors: [
          {
            message: expect.stringMatching(
              /^the database connection pool is exhausted: all 1 connections .* stayed busy for 3000 ms \(DB_POOL_TIMEOUT_MS\); retry shortly$/,
            ),
            extensions: { code: 'POOL_EXHAUSTED' },
          },
        ],
      });
      expect((await first).body).toEqual({ data: { allDocuments: { totalCount: 0 } } });
    },
    LONG,
  );

  serverTest('the embedded engine cannot interrupt a statement either way (faults.test.ts has SIGTERM under load)')(
    'SIGTERM with a request stuck in the database (no statement timeout): the process ends once SHUTDOWN_GRACE_MS is over, cancelling its statement',
    async () => {
      // A gateway of its own: the others' tests use the shared one (any order).
      const own = await gateway(db, ENV);
      const hold = await holdDocuments(db);
      let stuck: Promise<Reply | string>;
      try {
        stuck = postOnce(own.url, token, COUNT).catch((err: NodeJS.ErrnoException) => err.code ?? err.message);
        await blockedBackend(db);
        own.child.kill('SIGTERM');
        // The lock is still held: only the grace period can end the process.
        const exit = await own.exited;
        expect(exit.signal).toBeNull();
        expect(own.output()).toMatch(/shutdown grace period over: closing the connections still open/);
        expect(await stuck).toBe('ECONNRESET');
        // Its statement was cancelled on the way out, not left waiting in the server.
        await waitFor(async () => (await waitingBackends(db)).length === 0, 30_000, "the request's statement gone from the server");
      } finally {
        await hold.release();
      }
    },
    LONG,
  );
});
