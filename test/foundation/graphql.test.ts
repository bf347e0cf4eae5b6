// The gateway over HTTP: create a document, read it back, aggregate; health
// endpoints; the committed schema.graphql is up to date.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startHarness, type Harness } from '../support/harness.ts';
import { exportSchemas } from '../../src/graphql/export.ts';
import { projectRoot } from '../../src/config/paths.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

test('{ __typename }', async () => {
  const res = await h.graphql('{ __typename }', { token: null });
  expect(res).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
});

test('create a document, read it back, and aggregate', async () => {
  // Its own tenant: the aggregates count this test's documents only, whatever ran before.
  const tenant = 'graphql-aggregate';
  const token = h.token('sheratan_app', tenant);
  const created = await h.graphql<{ createDocument: { document: { rowId: string; title: string; tenant: string } } }>(
    `mutation ($input: CreateDocumentInput!) {
       createDocument(input: $input) { document { rowId title tenant source metadata } }
     }`,
    { variables: { input: { document: { title: 'Hello', content: 'World', source: 'test', metadata: { lang: 'en' } } } }, token },
  );
  expect(created.body.errors).toBeUndefined();
  const doc = created.body.data!.createDocument.document;
  expect(doc).toMatchObject({ title: 'Hello', tenant, source: 'test', metadata: { lang: 'en' } });

  const read = await h.graphql<{ documentByRowId: { title: string; content: string } }>(
    'query ($id: UUID!) { documentByRowId(rowId: $id) { title content } }',
    { variables: { id: doc.rowId }, token },
  );
  expect(read.body.data!.documentByRowId).toEqual({ title: 'Hello', content: 'World' });

  await h.graphql('mutation { createDocument(input: { document: { title: "Second", source: "test" } }) { clientMutationId } }', { token });
  const agg = await h.graphql<{ allDocuments: { totalCount: number; aggregates: { distinctCount: { source: string } } } }>(
    '{ allDocuments { totalCount aggregates { distinctCount { source } } groupedAggregates(groupBy: SOURCE) { keys distinctCount { rowId } } } }',
    { token },
  );
  expect(agg.body.errors).toBeUndefined();
  expect(agg.body.data!.allDocuments.totalCount).toBe(2);
  expect(agg.body.data!.allDocuments).toMatchObject({
    aggregates: { distinctCount: { source: '1' } },
    groupedAggregates: [{ keys: ['test'], distinctCount: { rowId: '2' } }],
  });
});

test('/healthz and /readyz', async () => {
  const health = await fetch(`${h.url}/healthz`);
  expect(health.status).toBe(200);
  const ready = await fetch(`${h.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' });
});

test('Ruru is served at /graphiql outside production', async () => {
  const res = await fetch(`${h.url}/graphiql`, { headers: { accept: 'text/html' } });
  expect(res.status).toBe(200);
  expect(await res.text()).toMatch(/ruru/i);
});

test('the committed schema.graphql and reporting.graphql are up to date (npm run schema:export)', async () => {
  const { api, reporting } = await exportSchemas(h.config, h.gateway.db);
  expect(readFileSync(path.join(projectRoot, 'schema.graphql'), 'utf8')).toBe(api);
  expect(readFileSync(path.join(projectRoot, 'reporting.graphql'), 'utf8')).toBe(reporting);
});

test("a document's chunks come in chunkIndex order unless orderBy says otherwise (the primary key is a random UUID)", async () => {
  const embedding = Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0.01));
  // Inserted in a scrambled order, so that neither insertion nor id order is chunkIndex order by chance.
  const order = [5, 2, 7, 0, 3, 6, 1, 4];
  const ingested = await h.graphql<{ ingestDocument: { document: { rowId: string } } }>(
    'mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "ordered", chunks: $c }) { document { rowId } } }',
    { variables: { c: order.map((i) => ({ content: `part ${i}`, chunkIndex: i, embedding })) } },
  );
  expect(ingested.body.errors).toBeUndefined();
  const id = ingested.body.data!.ingestDocument.document.rowId;
  const read = await h.graphql<{
    documentByRowId: {
      first: { nodes: Array<{ chunkIndex: number }> };
      all: { nodes: Array<{ chunkIndex: number; rowId: string }> };
      desc: { nodes: Array<{ chunkIndex: number }> };
    };
  }>(
    `query ($id: UUID!) { documentByRowId(rowId: $id) {
       first: chunks(first: 1) { nodes { chunkIndex } }
       all: chunks(first: 10) { nodes { chunkIndex rowId } }
       desc: chunks(first: 3, orderBy: [CHUNK_INDEX_DESC]) { nodes { chunkIndex } }
     } }`,
    { variables: { id } },
  );
  expect(read.body.errors).toBeUndefined();
  const doc = read.body.data!.documentByRowId;
  expect(doc.first.nodes).toEqual([{ chunkIndex: 0 }]);
  expect(doc.all.nodes.map((n) => n.chunkIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  // The ids are not in that order (else this test could not tell the two apart).
  expect(doc.all.nodes.map((n) => n.rowId)).not.toEqual([...doc.all.nodes.map((n) => n.rowId)].sort());
  expect(doc.desc.nodes.map((n) => n.chunkIndex)).toEqual([7, 6, 5]);
});
