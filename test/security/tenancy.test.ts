// Row-level security: tenants are isolated, readonly writes nothing, the
// reporting schema has no mutations, the audit trail is append-only.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let owner: pg.Client;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
});
afterAll(() => h.stop());

const create = (title: string, token: string) =>
  h.graphql<{ createDocument: { document: { rowId: string } } }>(
    'mutation ($t: String!) { createDocument(input: { document: { title: $t, source: "s" } }) { document { rowId } } }',
    { variables: { t: title }, token },
  );

// Each test uses tenants of its own and seeds what it reads: none depends on
// another's rows or on the order they run in.
test('a tenant sees and changes only its own documents through GraphQL', async () => {
  const acme = h.token('sheratan_app', 'isolation-acme', 'alice');
  const globex = h.token('sheratan_app', 'isolation-globex', 'bob');
  const a = (await create('acme doc', acme)).body.data!.createDocument.document.rowId;
  await create('globex doc', globex);

  const seen = await h.graphql<{ allDocuments: { nodes: Array<{ title: string }> } }>('{ allDocuments(first: 100) { nodes { title } } }', { token: globex });
  expect(seen.body.data!.allDocuments.nodes.map((n) => n.title)).toEqual(['globex doc']);

  const byId = await h.graphql<{ documentByRowId: null }>('query ($id: UUID!) { documentByRowId(rowId: $id) { title } }', {
    variables: { id: a },
    token: globex,
  });
  expect(byId.body.data!.documentByRowId).toBeNull();

  const update = await h.graphql(
    'mutation ($id: UUID!) { updateDocumentByRowId(input: { rowId: $id, documentPatch: { title: "pwned" } }) { document { title } } }',
    { variables: { id: a }, token: globex },
  );
  expect((update.body.data as { updateDocumentByRowId: { document: unknown } | null } | undefined)?.updateDocumentByRowId?.document ?? null).toBeNull();
  await h.graphql('mutation ($id: UUID!) { deleteDocumentByRowId(input: { rowId: $id }) { clientMutationId } }', {
    variables: { id: a },
    token: globex,
  });
  const still = await owner.query('select title from sheratan.documents where id = $1', [a]);
  expect(still.rows).toEqual([{ title: 'acme doc' }]);
});

test('the tenant column comes from the token, not from input', async () => {
  const res = await h.graphql('mutation { createDocument(input: { document: { title: "x", tenant: "globex" } }) { clientMutationId } }', {
    token: h.token('sheratan_app', 'acme'),
  });
  expect(res.status).toBe(400);
  expect(res.body.errors?.[0]?.message).toMatch(/tenant/);
});

test('sheratan_readonly reads its tenant and cannot write', async () => {
  await create('readable', h.token('sheratan_app', 'readonly-acme'));
  await create('not readable', h.token('sheratan_app', 'readonly-globex'));
  const ro = h.token('sheratan_readonly', 'readonly-acme');
  const read = await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }', { token: ro });
  expect(read.body.data!.allDocuments.totalCount).toBe(1);
  const write = await create('nope', ro);
  expect(write.body.errors?.[0]?.message).toMatch(/permission denied/);
});

const asRole = <T>(role: string, tenant: string, fn: (client: pg.Client) => Promise<T>): Promise<T> => h.asRole(role, tenant, fn);

test.each(['documents', 'document_chunks', 'jobs', 'audit_logs', 'search_logs'])(
  'SQL: %s rows of another tenant are invisible, and anonymous reads nothing',
  async (table) => {
    // A row of each kind for a tenant of this test's own (the document's audit row comes from its trigger).
    const tenant = `seeded-${table}`;
    const doc = await owner.query<{ id: string }>("insert into sheratan.documents (tenant, title) values ($1, 'seed') returning id", [tenant]);
    await owner.query("insert into sheratan.document_chunks (tenant, document_id, chunk_index, content) values ($1, $2, 0, 'seed')", [tenant, doc.rows[0]!.id]);
    await owner.query("insert into sheratan.jobs (tenant, job_type) values ($1, 'seed')", [tenant]);
    await owner.query('insert into sheratan.search_logs (tenant, k, result_count, latency_ms) values ($1, 10, 0, 1)', [tenant]);
    const count = `select count(*)::int as n from sheratan.${table}`;
    expect((await asRole('sheratan_app', tenant, (c) => c.query(count))).rows[0].n).toBeGreaterThan(0);
    const own = await asRole('sheratan_app', 'nobody-here', (c) => c.query(count));
    expect(own.rows[0].n).toBe(0);
    await expect(asRole('sheratan_anonymous', 'acme', (c) => c.query(`select * from sheratan.${table}`))).rejects.toThrow(/permission denied/);
  },
);

test('SQL: readonly cannot insert, update or delete anything', async () => {
  for (const sql of [
    "insert into sheratan.documents (title) values ('x')",
    "update sheratan.documents set title = 'x'",
    'delete from sheratan.documents',
    "insert into sheratan.jobs (job_type) values ('x')",
    'delete from sheratan.audit_logs',
  ]) {
    await expect(asRole('sheratan_readonly', 'acme', (c) => c.query(sql))).rejects.toThrow(/permission denied/);
  }
});

test('audit rows are written by writes and cannot be changed or erased by API roles', async () => {
  const acme = h.token('sheratan_app', 'acme', 'carol');
  const id = (await create('audited', acme)).body.data!.createDocument.document.rowId;
  const rows = await owner.query("select event_type, user_id, tenant, action from sheratan.audit_logs where resource = 'documents/' || $1", [id]);
  expect(rows.rows).toEqual([{ event_type: 'documents.insert', user_id: 'carol', tenant: 'acme', action: 'insert' }]);
  for (const sql of ["update sheratan.audit_logs set user_id = 'x'", 'delete from sheratan.audit_logs', 'truncate sheratan.audit_logs']) {
    await expect(asRole('sheratan_app', 'acme', (c) => c.query(sql))).rejects.toThrow(/permission denied/);
  }
  const audit = await h.graphql<{ allAuditLogs: { nodes: Array<{ userId: string }> } }>('{ allAuditLogs(first: 100) { nodes { userId eventType } } }', {
    token: acme,
  });
  expect(audit.body.data!.allAuditLogs.nodes.length).toBeGreaterThan(0);
});

test('the reporting schema has no mutation type and reads as sheratan_readonly', async () => {
  const intro = await h.graphql<{ __schema: { mutationType: null } }>('{ __schema { mutationType { name } } }', { path: '/reporting/graphql' });
  expect(intro.body.data!.__schema.mutationType).toBeNull();
  await create('reported', h.token('sheratan_app', 'reporting-acme'));
  const agg = await h.graphql<{ allDocuments: { totalCount: number; groupedAggregates: Array<{ keys: string[] }> } }>(
    '{ allDocuments { totalCount groupedAggregates(groupBy: SOURCE) { keys distinctCount { rowId } } } }',
    { path: '/reporting/graphql', token: h.token('sheratan_app', 'reporting-acme') },
  );
  expect(agg.body.errors).toBeUndefined();
  expect(agg.body.data!.allDocuments.totalCount).toBe(1);
  expect(agg.body.data!.allDocuments.groupedAggregates.map((g) => g.keys)).toEqual([['s']]);
  const mutation = await h.graphql('mutation { createDocument(input: { document: { title: "x" } }) { clientMutationId } }', {
    path: '/reporting/graphql',
  });
  expect(mutation.body.errors?.[0]?.message).toBe('this endpoint has no mutations (the reporting endpoint is read-only: send mutations to /graphql)');
});

test('schema lint: RLS on every table, no security definer in exposed schemas, no API role bypasses RLS', async () => {
  const noRls = await owner.query(`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'sheratan' and c.relkind in ('r', 'p') and not c.relrowsecurity`);
  expect(noRls.rows).toEqual([]);
  const definers = await owner.query(`
    select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'sheratan' and p.prosecdef`);
  expect(definers.rows).toEqual([]);
  const pinned = await owner.query(`
    select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'sheratan_private' and p.prosecdef and not exists (
       select 1 from unnest(p.proconfig) c where c like 'search_path=%')`);
  expect(pinned.rows).toEqual([]);
  const bypass = await owner.query(`
    select rolname from pg_roles
     where rolname in ('sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous')
       and (rolbypassrls or rolsuper)`);
  expect(bypass.rows).toEqual([]);
  const owned = await owner.query(`
    select c.relname from pg_class c join pg_roles r on r.oid = c.relowner
     where r.rolname in ('sheratan_authenticator', 'sheratan_app', 'sheratan_readonly', 'sheratan_anonymous')`);
  expect(owned.rows).toEqual([]);
  const auth = await owner.query("select rolinherit, rolcanlogin from pg_roles where rolname = 'sheratan_authenticator'");
  expect(auth.rows).toEqual([{ rolinherit: false, rolcanlogin: true }]);
});

test('audit retention: the owner-only cleanup deletes old rows and API roles cannot call it', async () => {
  await expect(asRole('sheratan_app', 'acme', (c) => c.query('select sheratan_private.cleanup_audit_logs(90)'))).rejects.toThrow(/permission denied/);
  // In a transaction rolled back after: the old rows of the CLI test below are not in it.
  await h.withRootDb(async (root) => {
    await root.query('select sheratan_private.cleanup_audit_logs(90)');
    await root.query(
      "insert into sheratan.audit_logs (event_type, resource, action, created_at) values ('old.event', 'x/1', 'insert', now() - interval '100 days')",
    );
    await root.query(
      "insert into sheratan.audit_logs (event_type, resource, action, created_at) values ('recent.event', 'x/2', 'insert', now() - interval '89 days')",
    );
    const { rows } = await root.query('select sheratan_private.cleanup_audit_logs(90) as deleted');
    expect(Number(rows[0].deleted)).toBe(1);
    const left = await root.query("select event_type from sheratan.audit_logs where event_type in ('old.event', 'recent.event')");
    expect(left.rows).toEqual([{ event_type: 'recent.event' }]);
  });
});

test('npm run audit:cleanup -- --days 90 prints how many rows it deleted', async () => {
  await owner.query(
    "insert into sheratan.audit_logs (event_type, resource, action, created_at) select 'old.cli', 'x/' || i, 'insert', now() - interval '200 days' from generate_series(1, 3) i",
  );
  const cli = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'audit:cleanup', '--days', '90'], {
    env: { ...process.env, ...h.cliEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(cli.stderr).toBe('');
  expect(cli.stdout.trim()).toBe('deleted 3 audit log row(s) older than 90 days');
  expect(cli.status).toBe(0);
});
