// Every API role × operation through GraphQL: what is allowed works, what is
// not is refused (permission errors) or sees nothing (RLS).
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let docId: string;
beforeAll(async () => {
  h = await startHarness();
  const created = await h.graphql<{ createDocument: { document: { rowId: string } } }>(
    'mutation { createDocument(input: { document: { title: "seed", source: "s" } }) { document { rowId } } }',
  );
  docId = created.body.data!.createDocument.document.rowId;
  await h.graphql('mutation { createJob(input: { job: { jobType: "embed" } }) { clientMutationId } }');
  // A chunk and a search log of acme's, so that reading them can be told from seeing nothing.
  const embedding = Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0));
  const ingested = await h.graphql('mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "with chunk", chunks: $c }) { clientMutationId } }', {
    variables: { c: [{ content: 'c', embedding }] },
  });
  expect(ingested.body.errors).toBeUndefined();
  const searched = await h.graphql('query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 1) { distance } }', { variables: { e: embedding } });
  expect(searched.body.errors).toBeUndefined();
});
afterAll(() => h.stop());

type Outcome = 'ok' | 'denied' | 'empty';
// `op` names the case: each otherTenant case is a tenant of its own, so that
// what one case writes (a document, a job) is not what another reads.
const who: Record<string, (op: string) => string | null> = {
  app: () => h.token('sheratan_app', 'acme'),
  readonly: () => h.token('sheratan_readonly', 'acme'),
  otherTenant: (op) => h.token('sheratan_app', `other-${op.replace(/\W+/g, '-')}`),
  anonymous: () => null,
};

const operations: Record<string, { query: () => string; count: (data: Record<string, { totalCount?: number } | null>) => number }> = {
  'read documents': { query: () => '{ allDocuments { totalCount } }', count: (d) => d.allDocuments?.totalCount ?? 0 },
  'read chunks': { query: () => '{ allDocumentChunks { totalCount } }', count: (d) => d.allDocumentChunks?.totalCount ?? 0 },
  'read jobs': { query: () => '{ allJobs { totalCount } }', count: (d) => d.allJobs?.totalCount ?? 0 },
  'read audit logs': { query: () => '{ allAuditLogs { totalCount } }', count: (d) => d.allAuditLogs?.totalCount ?? 0 },
  'read search logs': { query: () => '{ allSearchLogs { totalCount } }', count: (d) => d.allSearchLogs?.totalCount ?? 0 },
  'create document': {
    query: () => 'mutation { createDocument(input: { document: { title: "m" } }) { document { rowId } } }',
    count: (d) => ((d.createDocument as { document: { rowId?: string } | null } | null)?.document?.rowId ? 1 : 0),
  },
  'update document': {
    query: () => `mutation { updateDocumentByRowId(input: { rowId: "${docId}", documentPatch: { source: "s" } }) { document { rowId } } }`,
    count: (d) => ((d.updateDocumentByRowId as { document: unknown } | null)?.document ? 1 : 0),
  },
  'enqueue job': {
    query: () => 'mutation { createJob(input: { job: { jobType: "x" } }) { job { rowId } } }',
    count: (d) => ((d.createJob as { job: { rowId?: string } | null } | null)?.job?.rowId ? 1 : 0),
  },
};

const expected: Record<string, Record<string, Outcome>> = {
  app: {
    'read documents': 'ok',
    'read chunks': 'ok',
    'read jobs': 'ok',
    'read audit logs': 'ok',
    'read search logs': 'ok',
    'create document': 'ok',
    'update document': 'ok',
    'enqueue job': 'ok',
  },
  readonly: {
    'read documents': 'ok',
    'read chunks': 'ok',
    'read jobs': 'ok',
    'read audit logs': 'ok',
    'read search logs': 'ok',
    'create document': 'denied',
    'update document': 'denied',
    'enqueue job': 'denied',
  },
  otherTenant: {
    'read documents': 'empty',
    'read chunks': 'empty',
    'read jobs': 'empty',
    'read audit logs': 'empty',
    'read search logs': 'empty',
    'create document': 'ok',
    'update document': 'empty',
    'enqueue job': 'ok',
  },
  anonymous: {
    'read documents': 'denied',
    'read chunks': 'denied',
    'read jobs': 'denied',
    'read audit logs': 'denied',
    'read search logs': 'denied',
    'create document': 'denied',
    'update document': 'denied',
    'enqueue job': 'denied',
  },
};

/** What the database says when a role without the privilege tries the operation. */
const DENIED: Record<string, string> = {
  'create document': 'permission denied for table documents',
  'update document': 'permission denied for table documents',
  'enqueue job': 'permission denied for table jobs',
};

const cases = Object.entries(expected).flatMap(([role, ops]) => Object.entries(ops).map(([op, outcome]) => [role, op, outcome] as const));

test.each(cases)('%s: %s → %s', async (role, op, outcome) => {
  const { query, count } = operations[op]!;
  const res = await h.graphql<Record<string, { totalCount?: number } | null>>(query(), { token: who[role]!(op) });
  if (outcome === 'denied') {
    // Without a token nothing but introspection runs: 401 "authentication required" (plugins/authentication-required.ts).
    if (role === 'anonymous') {
      expect({ status: res.status, code: res.body.errors?.[0]?.extensions?.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
      return;
    }
    // The database refuses the role itself (the API has no other check that
    // could be confused with it): exactly the table's privilege, nothing stored.
    expect(res.body.errors?.map((e) => e.message)).toEqual([DENIED[op]]);
    expect(Object.values(res.body.data ?? {}).every((v) => v === null)).toBe(true);
    return;
  }
  expect(res.body.errors).toBeUndefined();
  const n = count(res.body.data!);
  if (outcome === 'ok') expect(n).toBeGreaterThan(0);
  else expect(n).toBe(0);
});
