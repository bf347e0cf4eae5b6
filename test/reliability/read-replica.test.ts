// README's READ_DATABASE_URL ("where /reporting/graphql reads (a replica)";
// Scale-out: "Point READ_DATABASE_URL at a read replica for
// /reporting/graphql") against a real streaming replica: a primary cluster
// of this file's own (support/fault-cluster.ts), a store bootstrapped and
// migrated on it as README's server setup says, and a replica made from it
// with pg_basebackup -R (the store's logins come with it). The gateway, as the
// process users run, reads /reporting/graphql on the replica (its read pool's
// sessions, application_name sheratan-reporting, are there and only there)
// once the primary's writes are replayed (a condition on the WAL positions,
// not a sleep), while /graphql reads and writes on the primary. With the
// replica stopped: what the gateway does today, recorded exactly. /metrics
// and doctor say whether the replica answers and how far behind it is.
import { parseConfig } from '../../src/config/config.ts';
import { withPgClient } from '../../src/database/connect.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { createServerTestDatabase, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { createFaultCluster, createReplica, clusterTest as clusterTestFor, type FaultCluster } from '../support/fault-cluster.ts';
import { postOnce, runCli, startGatewayProcess, waitFor, type GatewayProcess } from '../support/processes.ts';

/** Whole processes (and two clusters' creation). */
const LONG = 240_000;
const SECRET = 'read-replica-test-secret-0123456789abcdef';
const app = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'replica' });
const reporter = signToken(SECRET, { role: 'sheratan_readonly', tenant: 'acme', sub: 'replica' });
const INGEST = 'mutation ($title: String!) { ingestDocument(input: { title: $title, chunks: [{ content: "one chunk" }] }) { document { title } } }';
const TITLES = '{ allDocuments(first: 10, orderBy: CREATED_AT_ASC) { nodes { title } } }';
const INGESTED = '{ allIngestDailies(first: 10) { nodes { documents chunks } } }';

let db: TestDatabase | undefined;
let gw: GatewayProcess | undefined;
let primary: FaultCluster | undefined;
let replica: FaultCluster | undefined;
afterAll(async () => {
  if (gw && gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
  try {
    replica?.drop();
    await db?.drop().catch(() => undefined);
  } finally {
    primary?.drop();
  }
}, LONG);

/** The store's database on `cluster` (its superuser's URL names another database). */
const onCluster = (url: string, cluster: FaultCluster): string => {
  const u = new URL(url);
  u.port = String(cluster.port);
  return u.toString();
};

/** The sessions of the store's database on a cluster, by login and application_name (the superuser's own left out). */
const sessions = (superuserUrl: string): Promise<Array<{ usename: string; application_name: string }>> =>
  withPgClient(superuserUrl, async (c) => {
    const rows = await c.query<{ usename: string; application_name: string }>(
      'select distinct usename, application_name from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() order by 1, 2',
    );
    return rows.rows;
  });

// Server only; on a server run skipped, saying why, only when no cluster can be made here.
const clusterTest = clusterTestFor('streaming replication is a server feature; the embedded engine has one data directory and no replica');
clusterTest(
  'READ_DATABASE_URL at a streaming replica: /reporting/graphql reads there once replayed, /graphql reads and writes on the primary; with the replica stopped /reporting/graphql answers DATABASE_UNAVAILABLE and /readyz stays 200',
  async () => {
    const cluster = await createFaultCluster();
    primary = cluster;
    db = await createServerTestDatabase(primary.superuserUrl);
    await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
    replica = await createReplica(cluster);
    const primarySuperuser = db.superuserUrl!;
    const replicaSuperuser = onCluster(primarySuperuser, replica);
    expect(await withPgClient(replicaSuperuser, async (c) => (await c.query('select pg_is_in_recovery() as r')).rows[0])).toEqual({ r: true });
    expect(await withPgClient(primarySuperuser, async (c) => (await c.query('select pg_is_in_recovery() as r')).rows[0])).toEqual({ r: false });

    // The store's authenticator login on the replica: streaming replication carried the role and its password over.
    gw = await startGatewayProcess({
      ...db.env,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      DB_POOL_TIMEOUT_MS: '3000',
      READ_DATABASE_URL: onCluster(db.env.AUTH_DATABASE_URL!, replica),
    });

    for (const title of ['one', 'two', 'three']) {
      expect((await postOnce(gw.url, app, INGEST, { title })).body).toEqual({ data: { ingestDocument: { document: { title } } } });
    }
    // /graphql reads on the primary: its own writes at once.
    expect((await postOnce(gw.url, app, TITLES)).body).toEqual({ data: { allDocuments: { nodes: [{ title: 'one' }, { title: 'two' }, { title: 'three' }] } } });

    // Replayed on the replica: its replay position has reached the primary's position after the writes. The
    // insert position, not pg_current_wal_lsn(): with asynchronous commit (the test cluster's, and the
    // search logs' everywhere) an acknowledged commit may still sit in the WAL buffers, not yet written.
    const written = await withPgClient(
      primarySuperuser,
      async (c) => (await c.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn')).rows[0]!.lsn,
    );
    await waitFor(
      () =>
        withPgClient(
          replicaSuperuser,
          async (c) => (await c.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [written])).rows[0]!.ok,
        ),
      60_000,
      `the replica replaying up to ${written}`,
    );
    const reporting = await postOnce(`${gw.url}/reporting`, reporter, INGESTED);
    expect(reporting.body).toEqual({ data: { allIngestDailies: { nodes: [{ documents: '3', chunks: '3' }] } } });

    // The reporting endpoint's connections are on the replica, and only there; the API's on the primary.
    expect(await sessions(replicaSuperuser)).toEqual([{ usename: 'sheratan_authenticator', application_name: 'sheratan-reporting' }]);
    expect((await sessions(primarySuperuser)).filter((s) => s.application_name === 'sheratan-reporting')).toEqual([]);
    expect((await sessions(primarySuperuser)).filter((s) => s.usename === 'sheratan_authenticator').length).toBeGreaterThan(0);

    // /metrics and doctor see a standby and how far behind it is: once it has replayed all the primary wrote, 0 bytes.
    const scrape = async (): Promise<string> => (await fetch(`${gw!.url}/metrics`)).text();
    expect(await scrape()).toMatch(/^sheratan_replica_up 1$/m);
    await waitFor(async () => /^sheratan_replica_lag_bytes 0$/m.test(await scrape()), 60_000, 'the replica lag in /metrics reaching 0');
    const doctorEnv = { ...db.env, LOG_LEVEL: 'warn', READ_DATABASE_URL: onCluster(db.env.AUTH_DATABASE_URL!, replica) };
    const healthy = runCli(['doctor'], doctorEnv);
    await healthy.exited;
    expect(healthy.output()).toMatch(/^✓ read replica: a standby, \d+ bytes of WAL behind the primary$/m);

    // The replica stopped: today the reporting endpoint answers DATABASE_UNAVAILABLE, and /readyz (the API's pool) stays 200.
    replica.stop();
    const down = await postOnce(`${gw.url}/reporting`, reporter, INGESTED);
    // (Refused, or lost when the pool's idle session was cut under the request before the pool saw it go.)
    expect(down).toEqual({
      status: 200,
      body: {
        data: { allIngestDailies: null },
        errors: [
          {
            message: expect.stringMatching(/^the database is unavailable \((connection refused|connection lost)\); retry shortly$/),
            locations: [{ line: 1, column: 3 }],
            path: ['allIngestDailies'],
            extensions: { code: 'DATABASE_UNAVAILABLE' },
          },
        ],
      },
    });
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    // /metrics still answers, saying the replica is not there; doctor says ✗ with the error.
    const metricsDown = await scrape();
    expect(metricsDown).toMatch(/^sheratan_replica_up 0$/m);
    expect(metricsDown).toMatch(/^sheratan_replica_lag_bytes nan$/im); // prom-client prints "Nan"; Prometheus reads any case
    const sick = runCli(['doctor'], doctorEnv);
    await sick.exited;
    expect(sick.output()).toMatch(/^✗ read replica: READ_DATABASE_URL: .*ECONNREFUSED/m);
    // The API still reads and writes on the primary.
    expect((await postOnce(gw.url, app, INGEST, { title: 'four' })).body).toEqual({ data: { ingestDocument: { document: { title: 'four' } } } });
    expect((await postOnce(gw.url, app, TITLES)).body).toEqual({
      data: { allDocuments: { nodes: [{ title: 'one' }, { title: 'two' }, { title: 'three' }, { title: 'four' }] } },
    });
    expect(gw.child.exitCode).toBeNull();
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);
  },
  LONG,
);
