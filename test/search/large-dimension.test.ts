// Embeddings above 2,000 dimensions (OpenAI text-embedding-3-large: 3,072),
// on both backends: the store migrates, ingests and searches them through an
// HNSW index on embedding::halfvec(3072) (that searches use it, at a size where
// it beats an exact scan: ann-index-use-3072.test.ts), the
// distances stay full precision, doctor says why, and index:tune rebuilds it
// the same way. (VECTOR_DIMENSION=3072 once failed in the first migration:
// pgvector's HNSW takes vector columns of up to 2,000 dimensions.)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../../src/config/paths.ts';
import { rebuildAnnIndex } from '../../src/database/ann-index.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { bruteForce, topicalVectors } from '../support/embeddings.ts';

const DIM = 3072;
let h: Harness;
let owner: pg.Client;
const vectors = topicalVectors(40, DIM, 11, 4, 0.9);

const INGEST = `mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }`;

beforeAll(async () => {
  h = await startHarness({ VECTOR_DIMENSION: String(DIM) });
  owner = await h.owner();
  for (let d = 0; d < 4; d++) {
    const res = await h.graphql(INGEST, {
      variables: {
        input: {
          title: `large ${d}`,
          content: `the content of large document ${d}`,
          source: d % 2 ? 'wiki' : 'mail',
          chunks: vectors.slice(d * 10, d * 10 + 10).map((embedding, i) => ({ content: `chunk ${i} of large ${d}`, embedding })),
        },
      },
    });
    expect(res.body.errors).toBeUndefined();
  }
}, 120_000);
afterAll(() => h.stop());

interface Match {
  similarity: number;
  distance: number;
  chunk: { content: string };
}
const SEARCH = `query ($e: Vector!, $first: Int, $filter: DocumentChunkSearchFilter, $cap: Int, $diversity: SearchDiversity) {
  searchDocumentChunks(embedding: $e, first: $first, filter: $filter, maxPerDocument: $cap, diversity: $diversity) { similarity distance chunk { content } }
}`;
const search = async (variables: Record<string, unknown>): Promise<Match[]> => {
  const res = await h.graphql<{ searchDocumentChunks: Match[] }>(SEARCH, { variables });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.searchDocumentChunks;
};

test('the column is vector(3072) and its ANN index is HNSW on embedding::halfvec(3072)', async () => {
  const { rows } = await owner.query(`
    select format_type(a.atttypid, a.atttypmod) as type, pg_get_indexdef('sheratan.document_chunks_embedding_idx'::regclass) as def
      from pg_attribute a where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding'`);
  expect(rows[0].type).toBe('vector(3072)');
  expect(rows[0].def).toMatch(/USING hnsw \(\(\(embedding\)::halfvec\(3072\)\) halfvec_cosine_ops\)/);
});

test('searches rank as a brute-force cosine ranking does, with full-precision distances', async () => {
  const stored = (await owner.query(`select content, embedding::text as e from sheratan.document_chunks`)).rows.map((r) => ({
    id: r.content as string,
    embedding: JSON.parse(r.e) as number[],
  }));
  for (const q of [vectors[3]!, vectors[17]!, vectors[33]!]) {
    const got = await search({ e: q, first: 5 });
    const want = bruteForce(q, stored, 5);
    expect(got.map((m) => m.chunk.content)).toEqual(want.map((w) => w.id));
    expect(got[0]!.similarity).toBeCloseTo(1, 6);
    // vector (float4) arithmetic, not half precision (which would be off by about 1e-4).
    for (const [i, m] of got.entries()) expect(m.distance).toBeCloseTo(want[i]!.distance, 5);
  }
});

test('filters, the per-document cap, MMR, hybrid and more-like-this all answer at 3,072 dimensions', async () => {
  const wiki = await search({ e: vectors[12]!, first: 5, filter: { sources: ['wiki'] } });
  expect(wiki.length).toBe(5);
  expect(wiki.every((m) => /of large [13]$/.test(m.chunk.content))).toBe(true);
  const capped = await search({ e: vectors[12]!, first: 6, cap: 2 });
  const perDoc = new Map<string, number>();
  for (const m of capped) perDoc.set(m.chunk.content.split(' of ')[1]!, (perDoc.get(m.chunk.content.split(' of ')[1]!) ?? 0) + 1);
  expect(Math.max(...perDoc.values())).toBeLessThanOrEqual(2);
  expect((await search({ e: vectors[12]!, first: 5, diversity: { lambda: 0.5 } })).length).toBe(5);
  const hybrid = await h.graphql<{ hybridSearchDocumentChunks: Array<{ chunk: { content: string } }> }>(
    'query ($e: Vector!) { hybridSearchDocumentChunks(queryText: "large", embedding: $e, first: 3) { chunk { content } } }',
    { variables: { e: vectors[12]! } },
  );
  expect(hybrid.body.errors).toBeUndefined();
  expect(hybrid.body.data!.hybridSearchDocumentChunks).toHaveLength(3);
  const chunk = (await owner.query<{ id: string }>("select id from sheratan.document_chunks where content = 'chunk 2 of large 1'")).rows[0]!.id;
  const like = await h.graphql<{ documentChunkByRowId: { similarChunks: Array<{ chunk: { content: string } }> } }>(
    'query ($id: UUID!) { documentChunkByRowId(rowId: $id) { similarChunks(first: 3) { chunk { content } } } }',
    { variables: { id: chunk } },
  );
  expect(like.body.errors).toBeUndefined();
  expect(like.body.data!.documentChunkByRowId.similarChunks.map((m) => m.chunk.content)).not.toContain('chunk 2 of large 1');
});

test('doctor explains the halfvec index, and index:tune rebuilds it on halfvec', async () => {
  const doctor = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'doctor', '--json'], {
    env: { ...process.env, ...h.cliEnv, VECTOR_DIMENSION: String(DIM) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const { checks } = JSON.parse(doctor.stdout) as { checks: Array<{ name: string; status: string; detail: string }> };
  expect(checks.find((c) => c.name === 'ANN index')).toMatchObject({
    status: 'ok',
    detail: expect.stringMatching(/uses hnsw on embedding::halfvec\(3072\) \(half precision: pgvector indexes vector columns of up to 2,000 dimensions/),
  });
  const using = await rebuildAnnIndex(owner, { method: 'hnsw', m: 12, efConstruction: 48 }, { concurrently: false, maintenanceWorkMem: '64MB' });
  expect(using).toBe('hnsw ((embedding::halfvec(3072)) halfvec_cosine_ops) with (m = 12, ef_construction = 48)');
  expect((await search({ e: vectors[5]!, first: 1 }))[0]!.chunk.content).toBe('chunk 5 of large 0');
}, 120_000);
