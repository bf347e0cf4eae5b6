// Who may execute the store's private and privileged functions (issue 25).
// Every function in sheratan_private, and every security definer function
// outside PostgreSQL's own schemas, is enumerated from the catalog; each
// role (PUBLIC, the three API roles, the gateway's login and a direct
// reporting login) may execute it only when the allow-list below says so,
// with the reason. A function added later is on no list: it must start
// revoked (the default privileges), and granting it fails here until its
// entry says who needs it and why. Then the case the issue found: a
// reporting login called log_search directly and wrote search_logs rows of
// its choosing (950,000 characters of text, a latency of an hour, 2,000 rows
// in one statement); and what a search_logs row may hold at all. All of it
// in SQL, without a gateway (the gateway's own log row of a search:
// search-log-gateway.test.ts).
import pg from 'pg';
import { startDatabase, type TestDb } from '../support/database.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { backend, OWNER_ROLE, SUPERUSER_URL } from '../support/backend.ts';
import { createReportingLogin } from '../../src/operations/reporting-login.ts';
import { ANONYMOUS_ROLE, APP_ROLE, AUTHENTICATOR_ROLE, READONLY_ROLE } from '../../src/config/roles.ts';

let h: TestDb;
let owner: pg.Client;
const LOGIN = `acme_reports_fn_${process.pid}`;
const PASSWORD = 'reports-password-0123';

beforeAll(async () => {
  h = await startDatabase();
  await applyCurrentMigration(h);
  owner = await h.owner();
  // Catalog names print schema-qualified whatever the database's search_path.
  await owner.query('set search_path = pg_catalog');
  await createReportingLogin({ ...h.config, rootDatabaseUrl: SUPERUSER_URL }, h.db, { name: LOGIN, tenant: 'acme', password: PASSWORD });
  // Twice in CI (embedded) every test naming the login found no such role: the engine handed its backend to a
  // waiting client at the GRANT … ON DATABASE inside the login's transaction, which ended it (embedded-server.test.ts
  // now tests that class). Said here if the login is ever missing again.
  const { rows } = await owner.query<{ n: number }>('select count(*)::int as n from pg_roles where rolname = $1', [LOGIN]);
  if (rows[0]!.n !== 1) throw new Error(`the reporting login ${LOGIN} is not in pg_roles right after createReportingLogin`);
});
afterAll(async () => {
  await h.close();
  // On a server the login is cluster-wide (its database is gone with h.close()).
  if (SUPERUSER_URL) {
    const root = new pg.Client(SUPERUSER_URL);
    await root.connect();
    await root.query(`drop role if exists ${root.escapeIdentifier(LOGIN)}`);
    await root.end();
  }
});

/** A connection as the reporting login, as a BI tool or psql would make it. */
async function asLogin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = new URL(h.ownerUrl);
  url.username = LOGIN;
  url.password = PASSWORD;
  const client = new pg.Client(url.toString());
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

type Grantee = 'public' | typeof APP_ROLE | typeof READONLY_ROLE | typeof ANONYMOUS_ROLE | typeof AUTHENTICATOR_ROLE;
interface Allowed {
  roles: Grantee[];
  why: string;
}

const SEARCH_HELPER: Allowed = {
  roles: [APP_ROLE, READONLY_ROLE],
  why: 'called by the searches, which run as the caller; invoker rights, so a direct call can do nothing the caller could not',
};
const JOB_TRANSITION: Allowed = {
  roles: [APP_ROLE],
  why: 'the body of a job mutation (the sheratan.* wrapper runs as the caller); security definer because API roles have no UPDATE on jobs, and it checks the tenant and the subject itself',
};

const EMBEDDING_WORKER: Allowed = {
  roles: [APP_ROLE],
  why: "the embedding worker's step, run as the API role of the job's tenant (security definer: it checks the tenant and the job itself)",
};

const ENGINE_SEAL: Allowed = {
  roles: ['public', APP_ROLE, READONLY_ROLE, ANONYMOUS_ROLE, AUTHENTICATOR_ROLE],
  why: 'the engine calls it as whichever login holds the backend, so everyone may execute it; it refuses without the key only the engine holds (seal-key in the data directory)',
};

// Functions not named here must be executable by nobody but the owner.
// A reporting login is a member of sheratan_readonly: it may execute what readonly may.
const ALLOWED: Record<string, Allowed> = {
  'sheratan_private.ann_distance_sql(text)': SEARCH_HELPER,
  'sheratan_private.ann_kind()': SEARCH_HELPER,
  'sheratan_private.assert_embedding(public.vector)': SEARCH_HELPER,
  'sheratan_private.assert_search_limits(integer, integer, integer)': SEARCH_HELPER,
  'sheratan_private.candidate_pool(integer, integer, integer, text, integer)': SEARCH_HELPER,
  'sheratan_private.chunk_scope(jsonb, double precision, uuid, uuid, integer)': SEARCH_HELPER,
  'sheratan_private.mmr_order(uuid[], public.vector, double precision, integer)': SEARCH_HELPER,
  'sheratan_private.mmr_pick(uuid[], double precision[], double precision, integer)': SEARCH_HELPER,
  'sheratan_private.nearest_chunks(public.vector, integer, sheratan_private.chunk_scope)': SEARCH_HELPER,
  'sheratan_private.nearest_sql(sheratan_private.chunk_scope)': SEARCH_HELPER,
  'sheratan_private.scope_sql(sheratan_private.chunk_scope)': SEARCH_HELPER,
  'sheratan_private.text_matches(tsquery, integer, sheratan_private.chunk_scope)': {
    roles: [APP_ROLE, READONLY_ROLE],
    why: "hybrid search's full-text candidates: security definer so the GIN index serves it, reading only current_tenant()'s chunks, which no session can widen",
  },
  'sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamp with time zone)': {
    roles: [APP_ROLE, READONLY_ROLE],
    why: 'called by the searches, which run as the caller; it writes only for the gateway (session_user = the authenticator) and logins that may write search_logs themselves, with bounded values',
  },
  'sheratan_private.assert_group_count(bigint, integer)': {
    roles: [APP_ROLE, READONLY_ROLE],
    why: 'the groupedAggregates plans call it as the caller (a check with nothing to grant)',
  },
  'sheratan_private.current_tenant()': {
    roles: [APP_ROLE, READONLY_ROLE],
    why: "the row-level security policies and the tenant columns' default evaluate it as the caller",
  },
  'sheratan_private.login_tenant()': { roles: [APP_ROLE, READONLY_ROLE], why: 'current_tenant() calls it as the caller' },
  'sheratan_private.insert_chunks(uuid, sheratan.chunk[])': {
    roles: [APP_ROLE],
    why: 'ingestDocument and replaceDocumentChunks write chunks through it as the caller',
  },
  'sheratan_private.claim_job(text, text[])': JOB_TRANSITION,
  'sheratan_private.finish_job(bigint, text, boolean, jsonb, text)': JOB_TRANSITION,
  'sheratan_private.cancel_job(bigint)': JOB_TRANSITION,
  'sheratan_private.job_status_counts()': { roles: [AUTHENTICATOR_ROLE], why: "/metrics counts jobs by status on the gateway's own login" },
  // The text pipeline (issue 26): ingest with server-side embeddings and the embedding workers.
  'sheratan_private.ingest_prepared(text, text, text, jsonb, jsonb)': {
    roles: [APP_ROLE],
    why: 'ingestDocument runs it as the caller (row-level security applies)',
  },
  'sheratan_private.insert_prepared_chunks(uuid, jsonb)': {
    roles: [APP_ROLE],
    why: "ingest_prepared stores its chunks through it; security definer, it writes only to a document of current_tenant()'s",
  },
  'sheratan_private.rechunk_document(uuid, jsonb, text)': EMBEDDING_WORKER,
  'sheratan_private.store_chunk_vectors(uuid[], text[], text[], text)': EMBEDDING_WORKER,
  'sheratan_private.finish_embedding_job(bigint, text, text, integer, boolean)': EMBEDDING_WORKER,
  'sheratan_private.vectorizer_model()': {
    roles: [APP_ROLE, READONLY_ROLE],
    why: 'vectorizerStatus names the embedding model in use, which is no tenant data',
  },
  'sheratan_private.set_vectorizer(text, integer, integer)': {
    roles: [AUTHENTICATOR_ROLE],
    why: 'a gateway or worker declares its embedding provider as it starts, on its own login',
  },
  'sheratan_private.live_channel(text)': {
    roles: [AUTHENTICATOR_ROLE],
    why: "names a tenant's live-events channel by a keyed hash: the gateway's login LISTENs on it (anyone else who could name it could listen)",
  },
  'sheratan_private.embedding_work()': {
    roles: [AUTHENTICATOR_ROLE],
    why: "the workers share tenants out by their due embedding jobs' counts, on the gateway's login (counts only)",
  },
  // The operator page (issue 27 part 3, src/admin/data.ts): every tenant's search analytics, called on the gateway's login after the admin token's check.
  ...Object.fromEntries(
    [
      'admin_search_series(timestamp with time zone, integer)',
      'admin_result_counts(timestamp with time zone)',
      'admin_top_sources(timestamp with time zone, integer)',
      'admin_zero_result_queries(timestamp with time zone, integer)',
      'admin_embedding_progress()',
    ].map((fn) => [
      `sheratan_private.${fn}`,
      {
        roles: [AUTHENTICATOR_ROLE],
        why: "/admin's store-wide aggregates, on the gateway's own login once the admin token is checked; API roles cannot call them",
      } as Allowed,
    ]),
  ),
  // The embedded engine's own (packages/pglite-server/src/login-boundary.ts; no such schema on a server).
  ...(backend === 'embedded' ? Object.fromEntries(['seal', 'unseal'].map((fn) => [`sheratan_engine.${fn}(text)`, ENGINE_SEAL])) : {}),
};

const ROLES = ['public', APP_ROLE, READONLY_ROLE, ANONYMOUS_ROLE, AUTHENTICATOR_ROLE, LOGIN] as const;

/** The functions this test governs, with the roles that may execute each. */
async function governedFunctions(): Promise<Array<{ fn: string; definer: boolean; roles: string[] }>> {
  const { rows } = await owner.query<{ fn: string; definer: boolean; roles: string[] }>(
    `select n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')' as fn, p.prosecdef as definer,
            array(select r from unnest($1::text[]) r where has_function_privilege(r, p.oid, 'execute') order by r) as roles
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where (n.nspname = 'sheratan_private' or (p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'))
        -- an extension's own functions are its business
        and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      order by 1`,
    [ROLES],
  );
  return rows;
}

test('every private or security definer function is executable only by the roles on its allow-list', async () => {
  const functions = await governedFunctions();
  expect(functions.length).toBeGreaterThan(20);
  const wrong: string[] = [];
  for (const { fn, roles } of functions) {
    const allowed = ALLOWED[fn]?.roles ?? [];
    const expected = [...allowed, ...(allowed.includes(READONLY_ROLE) ? [LOGIN] : [])].sort();
    if (JSON.stringify(roles) !== JSON.stringify(expected)) {
      wrong.push(`${fn}: executable by [${roles.join(', ')}], allowed [${expected.join(', ')}]${ALLOWED[fn] ? '' : ' (not on the allow-list: owner only)'}`);
    }
  }
  expect(wrong).toEqual([]);
  // The list stays true: every entry names a function that exists.
  const names = new Set(functions.map((f) => f.fn));
  expect(Object.keys(ALLOWED).filter((fn) => !names.has(fn))).toEqual([]);
});

test('a function created later starts executable by nobody but its owner (private or definer alike)', async () => {
  await h.withRootDb(async (client) => {
    // As the role that runs the migrations (on the embedded engine the owner connection is the superuser).
    await client.query(`set local role ${OWNER_ROLE}`);
    await client.query('create function sheratan_private.probe() returns int language sql as $$ select 1 $$');
    await client.query('create function sheratan.probe_definer() returns int language sql security definer as $$ select 1 $$');
    const { rows } = await client.query<{ fn: string; roles: string[] }>(
      `select p.proname as fn, array(select r from unnest($1::text[]) r where has_function_privilege(r, p.oid, 'execute') order by r) as roles
         from pg_proc p where p.proname in ('probe', 'probe_definer') order by 1`,
      [ROLES],
    );
    expect(rows).toEqual([
      { fn: 'probe', roles: [] },
      { fn: 'probe_definer', roles: [] },
    ]);
  });
});

/** A vector of the store's dimension, 1 at `axis`. */
const unitVector = (axis: number): number[] => Array.from({ length: h.config.vectorDimension }, (_, i) => (i === axis ? 1 : 0));

const searchLogCount = async (): Promise<number> => (await owner.query<{ n: number }>('select count(*)::int as n from sheratan.search_logs')).rows[0]!.n;

test('a reporting login cannot write search_logs: calling log_search directly, or searching, logs nothing; writing the table is refused', async () => {
  const before = await searchLogCount();
  await asLogin(async (login) => {
    // The three calls: a 950,000-character text, a latency of an hour, 2,000 rows in one statement.
    await login.query(`select sheratan_private.log_search(repeat('x', 950000), 10, '{}', 5, 0.9, now())`);
    await login.query(`select sheratan_private.log_search('q', 10, '{}', 5, 0.9, now() - interval '3600.002 seconds')`);
    await login.query(`select sheratan_private.log_search('q' || i, 10, '{}', 5, 0.9, now()) from generate_series(1, 2000) i`);
    // Its searches are answered (read-only, as on a replica) and not logged.
    const e = `'[${unitVector(0).join(',')}]'::vector`;
    await login.query(`select * from sheratan.search_document_chunks(${e}, 3)`);
    await login.query(`select * from sheratan.similar_documents(gen_random_uuid(), 3)`);
    await expect(login.query('insert into sheratan.search_logs (k, result_count, latency_ms) values (1, 1, 1)')).rejects.toThrow(/permission denied/);
  });
  expect(await searchLogCount()).toBe(before);
});

test("a caller's start time cannot make a latency: it is measured within the transaction", async () => {
  // As the owner, who may log (and may write the table anyway).
  await owner.query('begin');
  try {
    await owner.query("select set_config('jwt.claims.tenant', 'acme', true)");
    for (const started of ["now() - interval '1 hour'", "'-infinity'", "'infinity'", 'null']) {
      await owner.query(`select sheratan_private.log_search('latency ' || $1, 1, '{}', 0, null, (${started})::timestamptz)`, [started]);
    }
    const { rows } = await owner.query<{ latency_ms: number }>("select latency_ms from sheratan.search_logs where query_text like 'latency %'");
    expect(rows).toHaveLength(4);
    for (const r of rows) expect(r.latency_ms).toBeGreaterThanOrEqual(0);
    for (const r of rows) expect(r.latency_ms).toBeLessThan(60_000);
  } finally {
    await owner.query('rollback');
  }
});

// Each bound of a search_logs row, broken one at a time (and its edge kept): whoever writes, the table refuses.
const ROW = { query_text: 'q', k: 1, filters: '{}', result_count: 0, latency_ms: 1 };
const breaking: Array<[string, boolean, Partial<Record<keyof typeof ROW, unknown>>]> = [
  ['query text of 10,000 characters', true, { query_text: 'x'.repeat(10_000) }],
  ['query text of 10,001 characters', false, { query_text: 'x'.repeat(10_001) }],
  ['k = 0', false, { k: 0 }],
  ['negative result count', false, { result_count: -1 }],
  ['negative latency', false, { latency_ms: -0.001 }],
  ['latency of one hour', true, { latency_ms: 3_600_000 }],
  ['latency over an hour', false, { latency_ms: 3_600_002 }],
  ['latency NaN', false, { latency_ms: 'NaN' }],
  ['latency Infinity', false, { latency_ms: 'Infinity' }],
  ['a filter of 20,000 characters', false, { filters: JSON.stringify({ s: 'x'.repeat(20_000) }) }],
];

test.each(breaking)('search_logs: %s → accepted: %s', async (_name, accepted, change) => {
  const row = { ...ROW, ...change };
  const insert = h.withRootDb((client) =>
    client.query('insert into sheratan.search_logs (query_text, k, filters, result_count, latency_ms) values ($1, $2, $3, $4, $5)', [
      row.query_text,
      row.k,
      row.filters,
      row.result_count,
      row.latency_ms,
    ]),
  );
  if (accepted) await expect(insert).resolves.toBeDefined();
  else await expect(insert).rejects.toMatchObject({ code: '23514' });
});
