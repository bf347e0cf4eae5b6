// Row-level security through GraphQL: tenants are isolated, readonly writes
// nothing, the reporting schema has no mutations, the audit trail is
// append-only. The same rules in SQL, per role and tenant, without a
// gateway: tenancy-sql.test.ts.
import type pg from 'pg';
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
