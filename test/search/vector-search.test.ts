// Vector search end to end: ingest over GraphQL, search against a brute-force
// ranking, filters, thresholds, tenancy, the ANN index, bad input, analytics.
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { describeAnnIndex, rebuildAnnIndex } from '../../src/database/ann-index.ts';
import { bruteForce, randomUnit, rng, toPgVector, topicalVectors } from '../support/embeddings.ts';
import { indexScansDuring } from '../support/index-scans.ts';

const DIM = 384;
let h: Harness;
let owner: pg.Client;

const INGEST = `mutation ($input: IngestDocumentInput!) {
  ingestDocument(input: $input) { document { rowId title chunks { totalCount } } }
}`;
const SEARCH = `query ($e: Vector!, $first: Int, $offset: Int, $min: Float, $filter: DocumentChunkSearchFilter, $q: String) {
  searchDocumentChunks(embedding: $e, first: $first, offset: $offset, minSimilarity: $min, filter: $filter, queryText: $q) {
    similarity distance chunk { rowId chunkIndex embedding document { title source } }
  }
}`;

interface Match {
  similarity: number;
  distance: number;
  chunk: { rowId: string; chunkIndex: number; embedding: number[]; document: { title: string; source: string } };
}

const search = async (variables: Record<string, unknown>, token?: string) => h.graphql<{ searchDocumentChunks: Match[] }>(SEARCH, { variables, token });

/** The small tenant's chunks, as stored. */
let small: Array<{ id: string; embedding: number[]; source: string; documentId: string }> = [];

beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  // Tenant "acme": 6 documents × 10 chunks, ingested over GraphQL.
  const vectors = topicalVectors(60, DIM, 7, 6, 0.9);
  for (let d = 0; d < 6; d++) {
    const res = await h.graphql<{ ingestDocument: { document: { rowId: string } } }>(INGEST, {
      variables: {
        input: {
          title: `doc ${d}`,
          content: `content of doc ${d}`,
          source: d % 2 === 0 ? 'wiki' : 'mail',
          metadata: { lang: d < 3 ? 'en' : 'de' },
          chunks: vectors.slice(d * 10, d * 10 + 10).map((embedding, i) => ({
            content: `chunk ${i} of doc ${d}`,
            embedding,
            metadata: { n: i, even: i % 2 === 0 },
            tokenCount: 5,
          })),
        },
      },
    });
    expect(res.body.errors).toBeUndefined();
  }
  const rows = await owner.query(`
    select c.id, c.embedding::text as e, d.source, c.document_id
      from sheratan.document_chunks c join sheratan.documents d on d.id = c.document_id
     where c.tenant = 'acme'`);
  small = rows.rows.map((r) => ({ id: r.id, embedding: JSON.parse(r.e), source: r.source, documentId: r.document_id }));
});
afterAll(() => h.stop());

test('ingestDocument stores the document and its chunks, and embeddings read back as arrays', async () => {
  expect(small).toHaveLength(60);
  const res = await h.graphql<{ allDocumentChunks: { nodes: Array<{ embedding: number[] }> } }>('{ allDocumentChunks(first: 1) { nodes { embedding } } }');
  const embedding = res.body.data!.allDocumentChunks.nodes[0]!.embedding;
  expect(embedding).toHaveLength(DIM);
  expect(embedding.every((x) => typeof x === 'number')).toBe(true);
});

test('results equal a brute-force cosine ranking, similarity = 1 − distance', async () => {
  const next = rng(99);
  for (let q = 0; q < 5; q++) {
    const query = randomUnit(DIM, next);
    const res = await search({ e: query, first: 10 });
    expect(res.body.errors).toBeUndefined();
    const got = res.body.data!.searchDocumentChunks;
    const want = bruteForce(query, small, 10);
    expect(got.map((m) => m.chunk.rowId)).toEqual(want.map((w) => w.id));
    got.forEach((m, i) => {
      expect(Math.abs(m.distance - want[i]!.distance)).toBeLessThan(1e-6);
      expect(Math.abs(m.similarity - (1 - m.distance))).toBeLessThan(1e-12);
    });
  }
});

test('chunk is a full DocumentChunk with its relations', async () => {
  const own = small[0]!;
  const res = await search({ e: own.embedding, first: 1 });
  const top = res.body.data!.searchDocumentChunks[0]!;
  expect(top.chunk.rowId).toBe(own.id);
  expect(top.similarity).toBeCloseTo(1, 5);
  expect(top.chunk.document.source).toBe(own.source);
  expect(top.chunk.document.title).toMatch(/^doc \d$/);
});

test('offset skips the best results and minSimilarity cuts the tail', async () => {
  const query = randomUnit(DIM, rng(5));
  const all = (await search({ e: query, first: 20 })).body.data!.searchDocumentChunks;
  const page = (await search({ e: query, first: 5, offset: 5 })).body.data!.searchDocumentChunks;
  expect(page.map((m) => m.chunk.rowId)).toEqual(all.slice(5, 10).map((m) => m.chunk.rowId));
  const threshold = all[7]!.similarity;
  const cut = (await search({ e: query, first: 20, min: threshold })).body.data!.searchDocumentChunks;
  expect(cut.map((m) => m.chunk.rowId)).toEqual(all.filter((m) => m.similarity >= threshold).map((m) => m.chunk.rowId));
  expect(cut.length).toBeGreaterThanOrEqual(8);
  expect(cut.length).toBeLessThan(20);
});

test('filters: document ids, sources, metadata containment, created_at range', async () => {
  const query = randomUnit(DIM, rng(11));
  const doc = small[15]!.documentId;
  const byDoc = (await search({ e: query, first: 10, filter: { documentIds: [doc] } })).body.data!.searchDocumentChunks;
  expect(byDoc.map((m) => m.chunk.rowId)).toEqual(
    bruteForce(
      query,
      small.filter((s) => s.documentId === doc),
      10,
    ).map((w) => w.id),
  );

  const bySource = (await search({ e: query, first: 10, filter: { sources: ['mail'] } })).body.data!.searchDocumentChunks;
  expect(bySource).toHaveLength(10);
  expect(bySource.map((m) => m.chunk.rowId)).toEqual(
    bruteForce(
      query,
      small.filter((s) => s.source === 'mail'),
      10,
    ).map((w) => w.id),
  );

  const byMeta = (await search({ e: query, first: 50, filter: { metadata: { even: true } } })).body.data!.searchDocumentChunks;
  expect(byMeta).toHaveLength(30);
  expect(byMeta.every((m) => m.chunk.chunkIndex % 2 === 0)).toBe(true);

  const future = new Date(Date.now() + 3600_000).toISOString();
  const none = (await search({ e: query, filter: { createdAfter: future } })).body.data!.searchDocumentChunks;
  expect(none).toEqual([]);
  const before = (await search({ e: query, first: 3, filter: { createdBefore: future } })).body.data!.searchDocumentChunks;
  expect(before).toHaveLength(3);
});

test('another tenant finds none of these chunks', async () => {
  const res = await search({ e: small[0]!.embedding, first: 10 }, h.token('sheratan_app', 'globex'));
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.searchDocumentChunks).toEqual([]);
});

test('each search writes one search_logs row with the caller and the figures', async () => {
  const before = (await owner.query('select count(*)::int as n from sheratan.search_logs')).rows[0].n;
  await search({ e: small[3]!.embedding, first: 4, q: 'what is doc 0 about?' }, h.token('sheratan_readonly', 'acme', 'reader'));
  const rows = await owner.query('select * from sheratan.search_logs order by id desc limit 1');
  expect((await owner.query('select count(*)::int as n from sheratan.search_logs')).rows[0].n).toBe(before + 1);
  expect(rows.rows[0]).toMatchObject({ tenant: 'acme', user_id: 'reader', k: 4, result_count: 4, query_text: 'what is doc 0 about?' });
  expect(rows.rows[0].top_similarity).toBeCloseTo(1, 5);
  expect(rows.rows[0].latency_ms).toBeGreaterThanOrEqual(0);
  // …and callers cannot write search logs themselves.
  await expect(
    h.asRole('sheratan_app', 'acme', (c) => c.query('insert into sheratan.search_logs (k, result_count, latency_ms) values (1, 1, 1)')),
  ).rejects.toThrow(/permission denied/);
});

describe('bad input is rejected with a clear message and stores nothing', () => {
  const counts = async () =>
    (await owner.query('select (select count(*) from sheratan.documents)::int as d, (select count(*) from sheratan.document_chunks)::int as c')).rows[0];
  const chunk = (embedding: unknown, chunkIndex = 0) => ({ content: 'x', embedding, chunkIndex });
  const good = randomUnit(DIM, rng(1));

  test.each([
    ['a 768-dimension embedding', [chunk(good), chunk(randomUnit(768, rng(2)), 1)], /expected 384 dimensions, not 768/],
    ['a null in the vector', [chunk([null, ...good.slice(1)])], /embedding\[0\] must be a number, not null/],
    ['the zero vector', [chunk(new Array(DIM).fill(0))], /zero vector/],
    ['a duplicate chunkIndex', [chunk(good, 0), chunk(good, 0)], /duplicate key value violates unique constraint/],
  ])('ingest with %s', async (_name, chunks, message) => {
    const before = await counts();
    const res = await h.graphql(INGEST, { variables: { input: { title: 'bad', chunks } } });
    expect(res.body.errors?.[0]?.message).toMatch(message);
    expect(await counts()).toEqual(before);
  });

  test('Infinity (1e999 in the JSON body) is rejected', async () => {
    const before = await counts();
    const body = `{"query": ${JSON.stringify(INGEST)}, "variables": {"input": {"title": "bad", "chunks": [{"content": "x", "embedding": [1e999${',0'.repeat(DIM - 1)}]}]}}}`;
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token()}` },
      body,
    });
    const json = (await res.json()) as { errors: Array<{ message: string }> };
    expect(json.errors[0]!.message).toMatch(/embedding\[0\] must be a finite number, not Infinity/);
    expect(await counts()).toEqual(before);
  });

  test.each([
    ['a wrong-length query', { e: [0.1, 0.2] }, /expected 384 dimensions, not 2/],
    ['a zero query', { e: new Array(DIM).fill(0) }, /zero vector/],
    ['first above MAX_SEARCH_RESULTS', { e: good, first: 101 }, /above the limit of 100 \(MAX_SEARCH_RESULTS\)/],
    ['first below 1', { e: good, first: 0 }, /first must be at least 1/],
    ['a negative offset', { e: good, offset: -1 }, /offset must not be negative/],
  ])('search with %s', async (_name, variables, message) => {
    const logs = (await owner.query('select count(*)::int as n from sheratan.search_logs')).rows[0].n;
    const res = await search(variables);
    expect(res.body.errors?.[0]?.message).toMatch(message);
    expect((await owner.query('select count(*)::int as n from sheratan.search_logs')).rows[0].n).toBe(logs);
  });
});

test('replaceDocumentChunks swaps the chunks atomically; deleting a document cascades', async () => {
  const created = await h.graphql<{ ingestDocument: { document: { rowId: string } } }>(INGEST, {
    variables: { input: { title: 'replace me', chunks: [{ content: 'old', embedding: randomUnit(DIM, rng(3)) }] } },
  });
  const id = created.body.data!.ingestDocument.document.rowId;
  const fresh = randomUnit(DIM, rng(4));
  const replaced = await h.graphql(
    `mutation ($id: UUID!, $chunks: [ChunkInput]!) {
       replaceDocumentChunks(input: { documentId: $id, chunks: $chunks }) { document { chunks(first: 10) { nodes { content chunkIndex } } } }
     }`,
    {
      variables: {
        id,
        chunks: [
          { content: 'new 0', embedding: fresh },
          { content: 'new 1', embedding: fresh },
        ],
      },
    },
  );
  expect(replaced.body.errors).toBeUndefined();
  const stored = await owner.query('select content, chunk_index from sheratan.document_chunks where document_id = $1 order by chunk_index', [id]);
  expect(stored.rows).toEqual([
    { content: 'new 0', chunk_index: 0 },
    { content: 'new 1', chunk_index: 1 },
  ]);

  const unknown = await h.graphql('mutation ($id: UUID!) { replaceDocumentChunks(input: { documentId: $id, chunks: [] }) { clientMutationId } }', {
    variables: { id: '00000000-0000-0000-0000-000000000000' },
  });
  expect(unknown.body.errors?.[0]?.message).toMatch(/no document 00000000-0000-0000-0000-000000000000 in this tenant/);

  await h.graphql('mutation ($id: UUID!) { deleteDocumentByRowId(input: { rowId: $id }) { clientMutationId } }', { variables: { id } });
  expect((await owner.query('select count(*)::int as n from sheratan.document_chunks where document_id = $1', [id])).rows[0].n).toBe(0);
});

describe('a few thousand chunks', () => {
  const N = 3000;
  let bulk: Array<{ id: string; embedding: number[]; source: string }> = [];
  let indexDef = '';

  beforeAll(async () => {
    // Loaded as the owner (tenant set explicitly): this is test data, not the API
    // under test. Like any bulk import into pgvector: drop the ANN index, load in
    // batches, then build the index once (its definition is kept as migrated).
    const vectors = topicalVectors(N, DIM, 42, 48, 1.0);
    indexDef = (await owner.query("select pg_get_indexdef('sheratan.document_chunks_embedding_idx'::regclass) as def")).rows[0].def as string;
    await owner.query('drop index sheratan.document_chunks_embedding_idx');
    const docs = await owner.query(`
      insert into sheratan.documents (tenant, title, source)
      select 'bulk', 'bulk ' || i, case when i % 50 = 0 then 'rare' else 'common' end from generate_series(0, 299) i
      returning id, source, title`);
    const byIndex = new Map(docs.rows.map((r) => [Number(String(r.title).slice(5)), r]));
    for (let start = 0; start < N; start += 250) {
      const values: string[] = [];
      const params: unknown[] = [];
      for (let i = start; i < Math.min(N, start + 250); i++) {
        const doc = byIndex.get(Math.floor(i / 10))!;
        params.push(doc.id, i % 10, toPgVector(vectors[i]!));
        values.push(`('bulk', $${params.length - 2}::uuid, $${params.length - 1}::int, 'c', $${params.length}::vector)`);
      }
      await owner.query(`insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding) values ${values.join(',')}`, params);
    }
    await owner.query(indexDef);
    await owner.query('analyze sheratan.document_chunks');
    const rows = await owner.query(`
      select c.id, c.embedding::text as e, d.source from sheratan.document_chunks c join sheratan.documents d on d.id = c.document_id where c.tenant = 'bulk'`);
    bulk = rows.rows.map((r) => ({ id: r.id, embedding: JSON.parse(r.e), source: r.source }));
  }, 300_000);
  // The file's other tests run before or after these (the order is shuffled):
  // they expect acme's 60 chunks alone, exactly ranked, as before this block.
  afterAll(async () => {
    await owner.query("delete from sheratan.documents where tenant = 'bulk'");
    await owner.query('drop index sheratan.document_chunks_embedding_idx');
    await owner.query(indexDef);
    await owner.query('analyze sheratan.document_chunks');
  }, 120_000);

  test('recall@10 against exact search is at least 0.95 at default settings', async () => {
    const token = h.token('sheratan_app', 'bulk');
    const queries = topicalVectors(40, DIM, 4242, 48, 1.0); // fresh points from the same distribution
    let found = 0;
    for (const query of queries) {
      const res = await search({ e: query, first: 10 }, token);
      const got = new Set(res.body.data!.searchDocumentChunks.map((m) => m.chunk.rowId));
      found += bruteForce(query, bulk, 10).filter((w) => got.has(w.id)).length;
    }
    const recall = found / (queries.length * 10);
    process.stdout.write(`recall@10 over ${queries.length} queries, ${N} chunks: ${recall.toFixed(3)}\n`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });

  test('a filtered search still returns first results when that many match (2% of chunks)', async () => {
    const token = h.token('sheratan_app', 'bulk');
    const rare = bulk.filter((b) => b.source === 'rare');
    expect(rare).toHaveLength(60);
    const query = topicalVectors(1, DIM, 777, 48, 1.0)[0]!;
    const res = await search({ e: query, first: 10, filter: { sources: ['rare'] } }, token);
    const got = res.body.data!.searchDocumentChunks;
    expect(got).toHaveLength(10);
    const exact = bruteForce(query, rare, 10).map((w) => w.id);
    expect(got.filter((m) => exact.includes(m.chunk.rowId)).length).toBeGreaterThanOrEqual(9);
  });

  test("the searches are served by the HNSW index: idx_scan moves for the caller's real searches, plain (plan-cached) and filtered", async () => {
    const token = h.token('sheratan_app', 'bulk');
    const query = topicalVectors(1, DIM, 97, 48, 1.0)[0]!;
    // Ten plain searches in a row: past five, a session's cached static query runs its generic plan, which must use the index too.
    const plain = await indexScansDuring(
      owner,
      'document_chunks_embedding_idx',
      async () => {
        for (let i = 0; i < 10; i++) expect((await search({ e: query, first: 10 }, token)).body.data!.searchDocumentChunks).toHaveLength(10);
      },
      { atLeast: 10 },
    );
    expect(plain).toBeGreaterThanOrEqual(10);
    // A broad filter rides on the index scan (the function's dynamic SQL, EXECUTE … USING). (Where the planner
    // expects few matches, e.g. a sources filter, it may rightly prefer an exact scan of them.)
    const filtered = await indexScansDuring(owner, 'document_chunks_embedding_idx', async () => {
      const res = await search({ e: query, first: 10, filter: { createdAfter: '2000-01-01T00:00:00Z' } }, token);
      expect(res.body.data!.searchDocumentChunks).toHaveLength(10);
    });
    expect(filtered).toBeGreaterThan(0);
  });

  test('index:tune switches to IVFFlat with lists = rows / 1000 and back to HNSW', async () => {
    const token = h.token('sheratan_app', 'bulk');
    const query = topicalVectors(1, DIM, 31, 48, 1.0)[0]!;
    await rebuildAnnIndex(owner, { method: 'ivfflat' }, { concurrently: false, maintenanceWorkMem: '64MB' });
    expect(await describeAnnIndex(owner)).toMatchObject({ name: 'document_chunks_embedding_idx', method: 'ivfflat', options: ['lists=3'] });
    expect((await search({ e: query, first: 10 }, token)).body.data!.searchDocumentChunks.length).toBeGreaterThan(0);
    await rebuildAnnIndex(owner, { method: 'hnsw', m: 24, efConstruction: 80 }, { concurrently: false, maintenanceWorkMem: '64MB' });
    expect(await describeAnnIndex(owner)).toMatchObject({ method: 'hnsw', options: ['m=24', 'ef_construction=80'] });
    expect((await describeAnnIndex(owner))!.rows).toBeGreaterThanOrEqual(3000);
    const got = (await search({ e: query, first: 10 }, token)).body.data!.searchDocumentChunks.map((m) => m.chunk.rowId);
    expect(got).toEqual(bruteForce(query, bulk, 10).map((w) => w.id));
  });
});
