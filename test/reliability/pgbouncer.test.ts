// POOLER_DATABASE_URL: the gateway's requests through PgBouncer in transaction
// mode (Debian's 1.18, a pooler of this file's own with 2 server connections
// for the gateway's 8). PgBouncer 1.18 cannot keep prepared statements across
// transactions, so behind it the requests' statements go unnamed; each
// request's role and claims are transaction-local (set_config(…, true)), so
// whichever server connection a transaction lands on, it runs as its caller.
// Migrations run on DATABASE_URL directly and LISTEN on AUTH_DATABASE_URL
// (a pooler in transaction mode cannot hold either), as docs/scaling.md says.
import pg from 'pg';
import { signToken } from '../../src/http/token-signing.ts';
import { AUTHENTICATOR_ROLE } from '../../src/config/roles.ts';
import { AUTHENTICATOR_PASSWORD, backend, createTestDatabase, migrateTestDatabase, serverTest, type TestDatabase } from '../support/backend.ts';
import { parseConfig } from '../../src/config/config.ts';
import { randomUnit, rng } from '../support/embeddings.ts';
import { havePgBouncer, PGBOUNCER, startPgBouncer, type PgBouncer } from '../support/pgbouncer.ts';
import { postOnce, startGatewayProcess, waitFor, type GatewayProcess, type Reply } from '../support/processes.ts';

const LONG = 240_000;
const SECRET = 'pgbouncer-test-secret-0123456789abcdef';
const DIM = 384;
const next = rng(44);
const tokenOf = (tenant: string): string => signToken(SECRET, { role: 'sheratan_app', tenant, sub: `${tenant}-writer` });

const INGEST = 'mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId tenant } } }';
const SEARCH = 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 5) { chunk { tenant } } }';
const HYBRID = 'query ($e: Vector!, $q: String!) { hybridSearchDocumentChunks(embedding: $e, queryText: $q, first: 5) { chunk { tenant } } }';
const COUNT = '{ allDocuments(first: 100) { totalCount nodes { tenant } } }';

let database: TestDatabase | undefined;
let bouncer: PgBouncer | undefined;
let gw: GatewayProcess | undefined;
afterAll(async () => {
  if (gw && gw.child.exitCode === null) {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
  await bouncer?.stop();
  await database?.drop();
}, LONG);

// CI installs PgBouncer (scripts/install-postgres.sh); a server machine without it skips, saying why.
const onServer: jest.It =
  backend === 'server' && !havePgBouncer
    ? (Object.assign(
        (name: string, ...rest: unknown[]) =>
          (test.skip as (...a: unknown[]) => void)(`${name} [skipped: no ${PGBOUNCER}; run scripts/install-postgres.sh]`, ...rest),
        test,
      ) as jest.It)
    : serverTest('PgBouncer pools connections to a PostgreSQL server; the embedded engine has no pooler in front of it');

// One store, pooler and gateway for the file (each test leaves them serving, in either order).
beforeAll(async () => {
  if (backend !== 'server' || !havePgBouncer) return;
  database = await createTestDatabase();
  await migrateTestDatabase(parseConfig(database.env));
  bouncer = await startPgBouncer(database.env.AUTH_DATABASE_URL!, { [AUTHENTICATOR_ROLE]: AUTHENTICATOR_PASSWORD }, 2);
  gw = await startGatewayProcess({ ...database.env, JWT_SECRET: SECRET, POOLER_DATABASE_URL: bouncer.url(AUTHENTICATOR_ROLE), DB_POOL_SIZE: '8' });
}, LONG);

/** Every reply an answer without errors, or the first that is not, with what it was. */
function errorsOf(replies: Array<{ what: string; reply: Reply }>): string[] {
  return replies
    .filter(({ reply }) => reply.status !== 200 || reply.body.errors)
    .map(({ what, reply }) => `${what}: ${reply.status} ${JSON.stringify(reply.body.errors)}`);
}

onServer(
  'two tenants ingest, search, search hybrid and read 8 at a time through 2 pooled server connections: no errors, each sees only its own rows',
  async () => {
    const tenants = ['acme', 'globex'];
    const ingested: Record<string, number> = { acme: 0, globex: 0 };
    const replies: Array<{ what: string; reply: Reply }> = [];
    const work: Array<() => Promise<void>> = [];
    for (let round = 0; round < 30; round++) {
      for (const tenant of tenants) {
        const token = tokenOf(tenant);
        const e = randomUnit(DIM, next);
        work.push(async () => {
          const reply = await postOnce(gw!.url, token, INGEST, {
            input: { title: `${tenant} ${round}`, chunks: [{ content: `${tenant} words ${round}`, embedding: e }] },
          });
          replies.push({ what: `ingest ${tenant} ${round}`, reply });
          if (reply.status === 200 && !reply.body.errors) ingested[tenant]!++;
        });
        work.push(async () => void replies.push({ what: `search ${tenant} ${round}`, reply: await postOnce(gw!.url, token, SEARCH, { e }) }));
        work.push(async () => void replies.push({ what: `hybrid ${tenant} ${round}`, reply: await postOnce(gw!.url, token, HYBRID, { e, q: 'words' }) }));
      }
    }
    // 8 at a time, the gateway's pool size: more clients than the pooler has server connections.
    const running = new Set<Promise<void>>();
    for (const job of work) {
      const p = job().finally(() => running.delete(p));
      running.add(p);
      if (running.size >= 8) await Promise.race(running);
    }
    await Promise.all(running);
    expect(errorsOf(replies)).toEqual([]);
    expect(ingested).toEqual({ acme: 30, globex: 30 });

    // Tenancy held on shared server connections: every row a search or a read returned is the caller's.
    for (const { what, reply } of replies) {
      const rows = (reply.body.data?.searchDocumentChunks ?? reply.body.data?.hybridSearchDocumentChunks ?? []) as Array<{ chunk: { tenant: string } }>;
      for (const r of rows) expect(`${what} → ${r.chunk.tenant}`).toBe(`${what} → ${what.split(' ')[1]}`);
    }
    for (const tenant of tenants) {
      const reply = await postOnce(gw!.url, tokenOf(tenant), COUNT);
      const docs = reply.body.data?.allDocuments as { totalCount: number; nodes: Array<{ tenant: string }> };
      expect(docs.totalCount).toBe(30);
      expect(new Set(docs.nodes.map((n) => n.tenant))).toEqual(new Set([tenant]));
    }

    // The requests did go through the pooler: the server saw at most its 2 connections of the gateway's pool.
    const c = new pg.Client(database!.env.DATABASE_URL);
    await c.connect();
    try {
      const { rows } = await c.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and usename = $1 and application_name = 'sheratan-gateway'",
        [AUTHENTICATOR_ROLE],
      );
      expect(rows[0]!.n).toBeLessThanOrEqual(2);
    } finally {
      await c.end();
    }
  },
  LONG,
);

onServer(
  'PgBouncer restarted on its port: requests meanwhile answer DATABASE_UNAVAILABLE and /readyz 503, and the gateway serves again without a restart of its own',
  async () => {
    const token = tokenOf('acme');
    const ok = async (): Promise<boolean> => {
      const r = await postOnce(gw!.url, token, COUNT);
      return r.status === 200 && !r.body.errors;
    };
    expect(await ok()).toBe(true);
    const port = bouncer!.port;
    await bouncer!.stop();
    bouncer = undefined;
    await waitFor(async () => (await fetch(`${gw!.url}/readyz`)).status === 503, 30_000, '/readyz to report the outage');
    for (const query of [COUNT, SEARCH]) {
      const down = await postOnce(gw!.url, token, query, { e: randomUnit(DIM, next) });
      expect(down.status).toBeLessThan(500);
      expect(down.body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    }
    bouncer = await startPgBouncer(database!.env.AUTH_DATABASE_URL!, { [AUTHENTICATOR_ROLE]: AUTHENTICATOR_PASSWORD }, 2, port);
    await waitFor(ok, 30_000, 'the gateway to serve through the restarted pooler');
    expect(gw!.child.exitCode).toBeNull();
  },
  LONG,
);
