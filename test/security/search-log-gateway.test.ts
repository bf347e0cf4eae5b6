// The gateway's own search_logs row (issue 25): a search through GraphQL is
// still logged, with its text and filter cut to what a row may hold. Who may
// call log_search, and what a row may hold at all, are tested in SQL
// without a gateway (private-functions.test.ts).
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';

let h: Harness;
let owner: pg.Client;

beforeAll(async () => {
  // A queryText longer than a log row keeps (MAX_QUERY_TEXT_LENGTH allows up to 1,000,000).
  h = await startHarness({ MAX_QUERY_TEXT_LENGTH: '30000' });
  await applyCurrentMigration(h);
  owner = await h.owner();
});
afterAll(() => h.stop());

/** A vector of the store's dimension, 1 at `axis`. */
const unitVector = (axis: number): number[] => Array.from({ length: h.config.vectorDimension }, (_, i) => (i === axis ? 1 : 0));

test('the gateway still logs each search, with its text and filter cut to what a row may hold', async () => {
  const embedding = unitVector(1);
  // A chunk to find, written as the owner (the API's own ingest is tested elsewhere).
  await owner.query(
    `with d as (insert into sheratan.documents (tenant, title) values ('acme', 'logged') returning id)
     insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding) select 'acme', d.id, 0, 'c', $1::public.vector from d`,
    [`[${embedding.join(',')}]`],
  );
  const documentIds = Array.from({ length: 600 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const started = Date.now();
  const res = await h.graphql(
    'query ($e: Vector!, $t: String, $ids: [UUID!]) { searchDocumentChunks(embedding: $e, first: 2, queryText: $t, filter: { documentIds: $ids }) { distance } }',
    {
      variables: { e: embedding, t: 'q'.repeat(25_000), ids: documentIds },
    },
  );
  expect(res.body.errors).toBeUndefined();
  const elapsed = Date.now() - started;
  const { rows } = await owner.query(
    `select char_length(query_text) as text, filters, latency_ms, k, user_id, tenant from sheratan.search_logs where char_length(query_text) > 100 order by id desc limit 1`,
  );
  expect(rows[0]).toMatchObject({ text: 10_000, k: 2, user_id: 'alice', tenant: 'acme', filters: { documentIds: { items: 600 }, truncated: true } });
  expect(rows[0].latency_ms).toBeGreaterThanOrEqual(0);
  expect(rows[0].latency_ms).toBeLessThanOrEqual(elapsed);
});
