// pgvector's iterative index scans at work (README, "Vector search": the
// search sets `hnsw.iterative_scan = strict_order` per request, with
// `hnsw.ef_search = SEARCH_EF`, so a filtered search keeps scanning until it
// has its `first` results).
//
// The data makes the difference visible: 50 documents of 80 random chunks
// each (4,000 chunks, loaded as an import would be: the ANN index dropped,
// the rows inserted, the index created again; the gateway analyzes the
// table), and a `sources` filter that matches one document, 2 % of the
// chunks. The planner does not know that (the filter's document list is a
// subquery it guesses at ten ids of fifty), so it scans the HNSW index and
// filters what the scan yields. A scan that stops after ef_search (40)
// candidates yields about 40 × 2 % ≈ 1 match; only an iterative scan goes
// on to 10.
// - The real GraphQL search as the tenant answers exactly `first` (10) chunks
//   of that document, and idx_scan of the HNSW index grew (index-scans.ts):
//   the index served it, not an exact scan.
// - The control calls the same search function in SQL as the same tenant
//   role (the gateway's login, a transaction rolled back after), with
//   hnsw.ef_search = SEARCH_EF as the gateway sets it: with
//   `set local hnsw.iterative_scan = off` it returns fewer than 10 chunks
//   while the index is used (an exact scan would find all 10), and with
//   `strict_order`, the gateway's setting, 10 again. The iterative scan is
//   the difference. No planner setting is changed, no SQL copied.
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { insertRandomChunks, rng, toPgVector } from '../support/embeddings.ts';
import { indexScansDuring } from '../support/index-scans.ts';
import { waitFor } from '../support/processes.ts';
import { ANN_INDEX } from '../../src/database/ann-index.ts';

const TENANT = 'iterative';
const DOCUMENTS = 50;
const CHUNKS_PER_DOCUMENT = 80;
const FIRST = 10;
const FILTER = { sources: ['rare'] };

let h: Harness;
let owner: pg.Client;
let rareDocument: string;
/** The ids of the rare document's chunks. */
let rareChunks: string[];
/** Like the stored vectors (insertRandomChunks: 384 numbers in [0, 1)), from a fixed seed. */
const next = rng(2024);
const query = Array.from({ length: 384 }, () => next());

beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  const def = (await owner.query<{ def: string }>(`select pg_get_indexdef('sheratan.${ANN_INDEX}'::regclass) as def`)).rows[0]!.def;
  await owner.query(`drop index sheratan.${ANN_INDEX}`);
  const ids: string[] = [];
  for (let d = 0; d < DOCUMENTS; d++) ids.push(await insertRandomChunks(owner, TENANT, CHUNKS_PER_DOCUMENT, `document ${d}`));
  rareDocument = ids[0]!;
  await owner.query("update sheratan.documents set source = 'rare' where id = $1", [rareDocument]);
  await owner.query("update sheratan.documents set source = 'common' where tenant = $1 and id <> $2", [TENANT, rareDocument]);
  await owner.query(def);
  rareChunks = (await owner.query<{ id: string }>('select id from sheratan.document_chunks where document_id = $1', [rareDocument])).rows.map((r) => r.id);
  expect(rareChunks).toHaveLength(CHUNKS_PER_DOCUMENT);
  // Searched once the gateway has analyzed the table (src/database/auto-analyze.ts), as a store would be.
  await waitFor(
    async () =>
      Number(
        (await owner.query("select analyze_count + autoanalyze_count as n from pg_stat_user_tables where relid = 'sheratan.document_chunks'::regclass")).rows[0]
          .n,
      ) > 0,
    60_000,
    'document_chunks analyzed',
  );
}, 600_000);
afterAll(() => h?.stop());

/** The search function called in SQL as the tenant (the gateway's login and role), with `iterative` as hnsw.iterative_scan. */
const searchInSql = (iterative: 'off' | 'strict_order'): Promise<Array<{ id: string; distance: number }>> =>
  h.asRole('sheratan_app', TENANT, async (client) => {
    await client.query("select set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', $2, true)", [String(h.config.searchEf), iterative]);
    return (
      await client.query<{ id: string; distance: number }>('select id, distance from sheratan.search_document_chunks($1::vector, $2, 0, null, $3::jsonb)', [
        toPgVector(query),
        FIRST,
        JSON.stringify(FILTER),
      ])
    ).rows;
  });

test(`a filtered search matching 2% of the chunks returns first (${FIRST}) results through the HNSW index; with iterative scans off the same search returns fewer`, async () => {
  expect(h.config.searchEf).toBe(40);

  // (a) The real search, as the tenant over GraphQL.
  let got: Array<{ distance: number; chunk: { rowId: string; document: { rowId: string } } }> = [];
  const graphqlScans = await indexScansDuring(owner, ANN_INDEX, async () => {
    const res = await h.graphql<{ searchDocumentChunks: typeof got }>(
      'query ($e: Vector!, $first: Int, $filter: DocumentChunkSearchFilter) { searchDocumentChunks(embedding: $e, first: $first, filter: $filter) { distance chunk { rowId document { rowId } } } }',
      { variables: { e: query, first: FIRST, filter: FILTER }, token: h.token('sheratan_app', TENANT) },
    );
    expect(res.body.errors).toBeUndefined();
    got = res.body.data!.searchDocumentChunks;
  });
  expect(got).toHaveLength(FIRST);
  expect(got.every((m) => m.chunk.document.rowId === rareDocument)).toBe(true);
  // strict_order: nearest first. (How near the approximate index comes to the exact answer is
  // retrieval quality's business: vector-search.test.ts, retrieval-quality.test.ts.)
  expect(got.map((m) => m.distance)).toEqual([...got.map((m) => m.distance)].sort((a, b) => a - b));
  expect(graphqlScans).toBeGreaterThan(0);

  // (b) The control: the same function, the same role and ef_search, iterative scans off.
  let stopped: Array<{ id: string }> = [];
  const offScans = await indexScansDuring(owner, ANN_INDEX, async () => {
    stopped = await searchInSql('off');
  });
  expect(offScans).toBeGreaterThan(0);
  expect(stopped.length).toBeLessThan(FIRST);
  expect(stopped.every((m) => rareChunks.includes(m.id))).toBe(true);

  // …and with the gateway's setting, strict_order, first results again.
  let iterated: Array<{ id: string }> = [];
  const strictScans = await indexScansDuring(owner, ANN_INDEX, async () => {
    iterated = await searchInSql('strict_order');
  });
  expect(strictScans).toBeGreaterThan(0);
  expect(iterated.map((m) => m.id)).toEqual(got.map((m) => m.chunk.rowId));
}, 120_000);
