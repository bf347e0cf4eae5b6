// Retrieval quality beyond top-k: hybrid (full-text + vector, RRF), MMR
// diversity, per-document caps and "more like this" — each checked against a
// reference computed here (brute-force cosine in JS, full-text ranks by a
// direct SQL query as the owner), plus tenancy, limits and search logs.
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { bruteForce, cosineDistance, randomUnit, rng, topicalVectors } from '../support/embeddings.ts';

const DIM = 384;
let h: Harness;
let owner: pg.Client;

interface StoredChunk {
  id: string;
  documentId: string;
  content: string;
  embedding: number[];
}
/** Tenant acme's chunks as stored (embeddings read back, so float4-rounded). */
let chunks: StoredChunk[] = [];
const documentIds: string[] = [];

const WORDS = ['river', 'mountain', 'harbour', 'engine', 'violin', 'orchard', 'glacier', 'lantern', 'compass', 'meadow'];

const INGEST = `mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }`;
const HYBRID = `query ($text: String, $e: Vector, $first: Int, $offset: Int, $filter: DocumentChunkSearchFilter,
  $perDoc: Int, $rrfK: Int, $tw: Float, $vw: Float, $candidates: Int, $diversity: SearchDiversity) {
  hybridSearchDocumentChunks(queryText: $text, embedding: $e, first: $first, offset: $offset, filter: $filter,
    maxPerDocument: $perDoc, rrfK: $rrfK, textWeight: $tw, vectorWeight: $vw, candidates: $candidates, diversity: $diversity) {
    score textRank vectorRank textScore similarity distance chunk { rowId documentId document { title } }
  }
}`;
const SEARCH = `query ($e: Vector!, $first: Int, $offset: Int, $perDoc: Int, $diversity: SearchDiversity) {
  searchDocumentChunks(embedding: $e, first: $first, offset: $offset, maxPerDocument: $perDoc, diversity: $diversity) {
    similarity distance chunk { rowId documentId }
  }
}`;

interface HybridMatch {
  score: number;
  textRank: number | null;
  vectorRank: number | null;
  textScore: number | null;
  similarity: number | null;
  distance: number | null;
  chunk: { rowId: string; documentId: string; document: { title: string } };
}
interface Match {
  similarity: number;
  distance: number;
  chunk: { rowId: string; documentId: string };
}

const hybrid = (variables: Record<string, unknown>, token?: string) => h.graphql<{ hybridSearchDocumentChunks: HybridMatch[] }>(HYBRID, { variables, token });
const search = (variables: Record<string, unknown>, token?: string) => h.graphql<{ searchDocumentChunks: Match[] }>(SEARCH, { variables, token });
const searchLogCount = async () => (await owner.query('select count(*)::int as n from sheratan.search_logs')).rows[0].n as number;

/** Full-text ranks as the owner computes them directly: acme's matches, best first, ties by id. */
async function textRanking(text: string): Promise<string[]> {
  const res = await owner.query(
    `select c.id from sheratan.document_chunks c, websearch_to_tsquery('english', $1) q
      where c.tenant = 'acme' and c.content_search @@ q
      order by ts_rank_cd(c.content_search, q) desc, c.id`,
    [text],
  );
  return res.rows.map((r) => r.id as string);
}

/** Reciprocal rank fusion of two rankings (ids best first), ties by id. */
function rrf(text: string[], vector: string[], k = 60, tw = 1, vw = 1): Array<{ id: string; score: number; t: number | null; v: number | null }> {
  const ids = [...new Set([...text, ...vector])];
  return ids
    .map((id) => {
      const t = text.indexOf(id) + 1 || null;
      const v = vector.indexOf(id) + 1 || null;
      return { id, t, v, score: (t ? tw / (k + t) : 0) + (v ? vw / (k + v) : 0) };
    })
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
}

/**
 * Maximal marginal relevance over `pool` (ordered most relevant first), one
 * relevance (0..1) per chunk, as specified: ties go to the more relevant.
 */
function mmrBy(pool: StoredChunk[], relevance: number[], lambda: number, k: number): string[] {
  const novelty: Array<number | null> = pool.map(() => null);
  const taken = pool.map(() => false);
  const chosen: string[] = [];
  for (let step = 0; step < Math.min(k, pool.length); step++) {
    let best = -1;
    let bestScore = -Infinity;
    pool.forEach((_, i) => {
      if (taken[i]) return;
      const score = lambda * relevance[i]! - (1 - lambda) * (novelty[i] ?? 0);
      if (best < 0 || score > bestScore) [best, bestScore] = [i, score];
    });
    taken[best] = true;
    chosen.push(pool[best]!.id);
    pool.forEach((c, i) => {
      if (taken[i]) return;
      const s = 1 - cosineDistance(pool[best]!.embedding, c.embedding);
      if (novelty[i] === null || s > novelty[i]!) novelty[i] = s;
    });
  }
  return chosen;
}

/** MMR with relevance = cosine similarity to the query (searchDocumentChunks' diversity). */
const mmr = (query: number[], pool: StoredChunk[], lambda: number, k: number): string[] =>
  mmrBy(
    pool,
    pool.map((c) => 1 - cosineDistance(query, c.embedding)),
    lambda,
    k,
  );

/**
 * Hybrid search with diversity, as specified: the best `take` fused results
 * (each side contributing its `pool` best), relevance = fused score / best
 * fused score, then MMR.
 */
async function hybridMmr(text: string, query: number[], o: { lambda: number; take: number; pool: number; k: number }): Promise<string[]> {
  const fused = rrf(
    (await textRanking(text)).slice(0, o.pool),
    bruteForce(query, chunks, o.pool).map((m) => m.id),
  ).slice(0, o.take);
  const top = fused[0]?.score ?? 1;
  return mmrBy(
    fused.map((f) => byId(f.id)),
    fused.map((f) => f.score / top),
    o.lambda,
    o.k,
  );
}

const byId = (id: string) => chunks.find((c) => c.id === id)!;

/**
 * Expects `got` to be the start of `reference` (a full brute-force ranking).
 * pgvector sums in float4, so distances closer than 1e-5 (the near-duplicate
 * chunks here) are ties whose order either side may break differently.
 */
function expectRanking(got: Array<{ id: string; distance: number }>, reference: Array<{ id: string; distance: number }>, k: number): void {
  expect(got).toHaveLength(Math.min(k, reference.length));
  expect(new Set(got.map((g) => g.id)).size).toBe(got.length);
  got.forEach((g, i) => {
    const want = reference[i]!;
    expect(g.distance).toBeCloseTo(want.distance, 5);
    expect(reference.filter((r) => Math.abs(r.distance - want.distance) < 1e-5).map((r) => r.id)).toContain(g.id);
  });
}
const asRanked = (matches: Array<{ distance: number; chunk: { rowId: string } }>) => matches.map((m) => ({ id: m.chunk.rowId, distance: m.distance }));

beforeAll(async () => {
  h = await startHarness();
  await applyCurrentMigration(h);
  owner = await h.owner();
  // acme: 8 documents × 6 chunks. Chunk texts mix a few words of WORDS; the
  // last document holds near-duplicates (one vector with tiny variations).
  const vectors = topicalVectors(49, DIM, 21, 4, 0.9);
  const next = rng(5);
  const base = vectors[48]!;
  for (let d = 0; d < 8; d++) {
    const input = {
      title: `doc ${d}`,
      source: d % 2 ? 'odd' : 'even',
      chunks: Array.from({ length: 6 }, (_, i) => {
        const words = Array.from({ length: 4 }, () => WORDS[Math.floor(next() * WORDS.length)]);
        const embedding = d === 7 ? base.map((x) => x + 0.002 * (next() - 0.5)) : vectors[d * 6 + i]!;
        return { content: `The ${words.join(' and the ')} of part ${i}.`, embedding };
      }),
    };
    const res = await h.graphql<{ ingestDocument: { document: { rowId: string } } }>(INGEST, { variables: { input } });
    expect(res.body.errors).toBeUndefined();
    documentIds.push(res.body.data!.ingestDocument.document.rowId);
  }
  // globex holds copies of acme's first document: identical text and vectors.
  const copy = await owner.query(
    `select content, embedding::text as e from sheratan.document_chunks
    where document_id = $1 order by chunk_index`,
    [documentIds[0]],
  );
  const res = await h.graphql(INGEST, {
    variables: { input: { title: 'globex copy', chunks: copy.rows.map((r) => ({ content: r.content, embedding: JSON.parse(r.e) })) } },
    token: h.token('sheratan_app', 'globex'),
  });
  expect(res.body.errors).toBeUndefined();
  const rows = await owner.query(`select id, document_id, content, embedding::text as e from sheratan.document_chunks where tenant = 'acme'`);
  chunks = rows.rows.map((r) => ({ id: r.id, documentId: r.document_id, content: r.content, embedding: JSON.parse(r.e) }));
});
afterAll(() => h.stop());

describe('hybrid search', () => {
  test('fuses full-text and vector ranks exactly as reciprocal rank fusion of the reference rankings', async () => {
    const query = randomUnit(DIM, rng(77));
    for (const text of ['river', 'violin orchard', '"the glacier and the lantern"', 'compass -meadow']) {
      const textRanks = await textRanking(text);
      expect(textRanks.length).toBeGreaterThan(0);
      const expected = rrf(
        textRanks,
        bruteForce(query, chunks, 50).map((m) => m.id),
      ).slice(0, 10);
      // Both lists contribute to the page.
      expect(expected.some((m) => m.t !== null) && expected.some((m) => m.v !== null)).toBe(true);
      const res = await hybrid({ text, e: query, first: 10 });
      expect(res.body.errors).toBeUndefined();
      const got = res.body.data!.hybridSearchDocumentChunks;
      expect(got.map((m) => m.chunk.rowId)).toEqual(expected.map((m) => m.id));
      got.forEach((m, i) => {
        expect(m.score).toBeCloseTo(expected[i]!.score, 12);
        expect(m.textRank).toBe(expected[i]!.t);
        expect(m.vectorRank).toBe(expected[i]!.v);
        expect(m.distance).toBeCloseTo(cosineDistance(query, byId(m.chunk.rowId).embedding), 5);
        expect(m.similarity).toBeCloseTo(1 - m.distance!, 12);
        expect(m.textScore === null).toBe(m.textRank === null);
      });
    }
  });

  test('the constant and the weights change the fusion as the formula says; offset pages through it', async () => {
    const query = randomUnit(DIM, rng(78));
    const text = 'harbour or engine';
    const expected = rrf(
      await textRanking(text),
      bruteForce(query, chunks, 50).map((m) => m.id),
      5,
      2,
      0.5,
    );
    const res = await hybrid({ text, e: query, first: 6, offset: 2, rrfK: 5, tw: 2, vw: 0.5 });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.hybridSearchDocumentChunks.map((m) => m.chunk.rowId)).toEqual(expected.slice(2, 8).map((m) => m.id));
  });

  test('text alone ranks by full-text relevance; embedding alone ranks by similarity', async () => {
    const textOnly = (await hybrid({ text: 'lantern', first: 20 })).body.data!.hybridSearchDocumentChunks;
    expect(textOnly.map((m) => m.chunk.rowId)).toEqual((await textRanking('lantern')).slice(0, 20));
    expect(textOnly.every((m) => m.vectorRank === null && m.similarity === null && m.textRank !== null)).toBe(true);
    expect(textOnly[0]!.chunk.document.title).toMatch(/^doc \d$/);

    const query = randomUnit(DIM, rng(79));
    const vectorOnly = (await hybrid({ e: query, first: 10 })).body.data!.hybridSearchDocumentChunks;
    expect(vectorOnly.map((m) => m.chunk.rowId)).toEqual(bruteForce(query, chunks, 10).map((m) => m.id));
    expect(vectorOnly.map((m) => m.vectorRank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(vectorOnly.every((m) => m.textRank === null)).toBe(true);
  });

  test('filters and maxPerDocument apply to both rankings', async () => {
    const query = randomUnit(DIM, rng(80));
    const odd = new Set(documentIds.filter((_, d) => d % 2 === 1));
    const got = (await hybrid({ text: 'river or mountain', e: query, first: 20, filter: { sources: ['odd'] }, perDoc: 2 })).body.data!
      .hybridSearchDocumentChunks;
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((m) => odd.has(m.chunk.documentId))).toBe(true);
    const perDocument = new Map<string, number>();
    for (const m of got) perDocument.set(m.chunk.documentId, (perDocument.get(m.chunk.documentId) ?? 0) + 1);
    expect(Math.max(...perDocument.values())).toBeLessThanOrEqual(2);
    // The cap keeps the best of each document, in fused order.
    const text = (await textRanking('river or mountain')).filter((id) => odd.has(byId(id).documentId));
    const vector = bruteForce(
      query,
      chunks.filter((c) => odd.has(c.documentId)),
      50,
    ).map((m) => m.id);
    const seen = new Map<string, number>();
    const expected = rrf(text, vector).filter((m) => {
      const doc = byId(m.id).documentId;
      seen.set(doc, (seen.get(doc) ?? 0) + 1);
      return seen.get(doc)! <= 2;
    });
    expect(got.map((m) => m.chunk.rowId)).toEqual(expected.slice(0, 20).map((m) => m.id));
  });

  test('another tenant never sees these chunks, and its own copies never appear here', async () => {
    const copy = chunks.find((c) => c.documentId === documentIds[0])!;
    const globex = (await hybrid({ text: copy.content, e: copy.embedding, first: 50 }, h.token('sheratan_app', 'globex'))).body.data!
      .hybridSearchDocumentChunks;
    expect(globex.length).toBe(6);
    expect(globex.every((m) => m.chunk.document.title === 'globex copy')).toBe(true);
    const acme = (await hybrid({ text: copy.content, e: copy.embedding, first: 50 })).body.data!.hybridSearchDocumentChunks;
    expect(acme.some((m) => m.chunk.document.title === 'globex copy')).toBe(false);
  });

  test('the reporting endpoint (always sheratan_readonly) searches the same way', async () => {
    const query = randomUnit(DIM, rng(82));
    const viaApi = (await hybrid({ text: 'violin', e: query, first: 5 })).body.data!.hybridSearchDocumentChunks;
    const viaReporting = await h.graphql<{ hybridSearchDocumentChunks: HybridMatch[] }>(HYBRID, {
      variables: { text: 'violin', e: query, first: 5 },
      path: '/reporting/graphql',
    });
    expect(viaReporting.body.errors).toBeUndefined();
    expect(viaReporting.body.data!.hybridSearchDocumentChunks.map((m) => m.chunk.rowId)).toEqual(viaApi.map((m) => m.chunk.rowId));
    expect(viaApi.some((m) => m.textRank !== null)).toBe(true);
  });

  test('each call writes one search_logs row with its mode and settings', async () => {
    const before = await searchLogCount();
    await hybrid({ text: 'engine', first: 3, rrfK: 10 });
    expect(await searchLogCount()).toBe(before + 1);
    const row = (await owner.query('select * from sheratan.search_logs order by id desc limit 1')).rows[0];
    expect(row).toMatchObject({ query_text: 'engine', k: 3, tenant: 'acme', user_id: 'alice' });
    expect(row.filters).toMatchObject({ mode: 'hybrid', rrfK: 10, embedding: false });
  });
});

describe('diversity (MMR) and per-document caps', () => {
  const nearDuplicates = () => chunks.filter((c) => c.documentId === documentIds[7]);

  test('MMR picks exactly the reference selection order, and pushes near-duplicates down', async () => {
    const query = nearDuplicates()[0]!.embedding.map((x, i) => x + (i % 7 === 0 ? 0.05 : 0));
    const plain = (await search({ e: query, first: 6 })).body.data!.searchDocumentChunks;
    expect(plain.filter((m) => m.chunk.documentId === documentIds[7]).length).toBe(6);

    for (const lambda of [0.3, 0.5, 0.8]) {
      const pool = bruteForce(query, chunks, 24).map((m) => byId(m.id));
      const res = await search({ e: query, first: 6, diversity: { lambda } });
      expect(res.body.errors).toBeUndefined();
      const got = res.body.data!.searchDocumentChunks;
      expect(got.map((m) => m.chunk.rowId)).toEqual(mmr(query, pool, lambda, 6));
      // Weighted towards novelty, the near-duplicates give way to other chunks.
      if (lambda <= 0.5) expect(got.filter((m) => m.chunk.documentId === documentIds[7]).length).toBeLessThanOrEqual(2);
      for (const m of got) expect(m.distance).toBeCloseTo(cosineDistance(query, byId(m.chunk.rowId).embedding), 5);
    }
    // lambda 1 is plain relevance.
    const relevance = (await search({ e: query, first: 6, diversity: { lambda: 1, candidates: 40 } })).body.data!.searchDocumentChunks;
    expect(relevance.map((m) => m.chunk.rowId)).toEqual(plain.map((m) => m.chunk.rowId));
  });

  test('candidates sets the pool MMR chooses from; offset pages through the selection', async () => {
    const query = randomUnit(DIM, rng(81));
    const pool = bruteForce(query, chunks, 12).map((m) => byId(m.id));
    const got = (await search({ e: query, first: 4, offset: 2, diversity: { lambda: 0.4, candidates: 12 } })).body.data!.searchDocumentChunks;
    expect(got.map((m) => m.chunk.rowId)).toEqual(mmr(query, pool, 0.4, 6).slice(2));
  });

  test('two diversified searches in one request each answer as they would alone', async () => {
    const [q1, q2] = [randomUnit(DIM, rng(91)), randomUnit(DIM, rng(92))];
    const res = await h.graphql<Record<'a' | 'b', Array<{ distance: number; chunk: { rowId: string } }>>>(
      `query ($q1: Vector!, $q2: Vector!) {
        a: searchDocumentChunks(embedding: $q1, first: 4, diversity: { lambda: 0.4, candidates: 12 }) { distance chunk { rowId } }
        b: searchDocumentChunks(embedding: $q2, first: 3, diversity: { lambda: 0.7 }) { distance chunk { rowId } }
      }`,
      { variables: { q1, q2 } },
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.a.map((m) => m.chunk.rowId)).toEqual(
      mmr(
        q1,
        bruteForce(q1, chunks, 12).map((m) => byId(m.id)),
        0.4,
        4,
      ),
    );
    expect(res.body.data!.b.map((m) => m.chunk.rowId)).toEqual(
      mmr(
        q2,
        bruteForce(q2, chunks, 20).map((m) => byId(m.id)),
        0.7,
        3,
      ),
    );
    for (const [q, got] of [
      [q1, res.body.data!.a],
      [q2, res.body.data!.b],
    ] as const) {
      for (const m of got) expect(m.distance).toBeCloseTo(cosineDistance(q, byId(m.chunk.rowId).embedding), 5);
    }
    // The same search twice (grafast makes them one step) once failed: "operator does not exist: vector <=> integer".
    const twice = await h.graphql<Record<'a' | 'b', Array<{ distance: number }>>>(
      `query ($q: Vector!, $d: SearchDiversity) {
        a: searchDocumentChunks(embedding: $q, diversity: $d) { distance }
        b: searchDocumentChunks(embedding: $q, diversity: $d) { distance }
      }`,
      { variables: { q: q1, d: { lambda: 0.4 } } },
    );
    expect(twice.body.errors).toBeUndefined();
    expect(twice.body.data!.a).toHaveLength(10);
    expect(twice.body.data!.b).toEqual(twice.body.data!.a);
  });

  test('maxPerDocument returns the nearest chunks with at most N from any one document', async () => {
    const query = nearDuplicates()[2]!.embedding;
    for (const perDoc of [1, 2]) {
      const got = (await search({ e: query, first: 5, perDoc })).body.data!.searchDocumentChunks;
      const seen = new Map<string, number>();
      const expected = bruteForce(query, chunks, chunks.length).filter((m) => {
        const doc = byId(m.id).documentId;
        seen.set(doc, (seen.get(doc) ?? 0) + 1);
        return seen.get(doc)! <= perDoc;
      });
      expectRanking(asRanked(got), expected, 5);
      const perDocument = new Map<string, number>();
      for (const m of got) perDocument.set(m.chunk.documentId, (perDocument.get(m.chunk.documentId) ?? 0) + 1);
      expect(Math.max(...perDocument.values())).toBeLessThanOrEqual(perDoc);
    }
    // More than the documents can give: every document's best, then nothing.
    const all = (await search({ e: query, first: 20, perDoc: 1 })).body.data!.searchDocumentChunks;
    expect(new Set(all.map((m) => m.chunk.documentId)).size).toBe(8);
    expect(all).toHaveLength(8);
  });
});

describe('hybrid search with diversity (MMR)', () => {
  test('picks exactly the reference MMR order over the best fused results, for generated searches', async () => {
    const next = rng(404);
    for (let run = 0; run < 12; run++) {
      const text = Array.from({ length: 1 + Math.floor(next() * 3) }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' or ');
      // Every third query sits among the near-duplicates, where MMR must act.
      const query = run % 3 === 0 ? chunks.filter((c) => c.documentId === documentIds[7])[run % 6]!.embedding : randomUnit(DIM, rng(500 + run));
      const first = 1 + Math.floor(next() * 8);
      const offset = Math.floor(next() * 3);
      const lambda = Math.round(next() * 10) / 10;
      const candidates = next() < 0.5 ? undefined : first + offset + Math.floor(next() * 30);
      const res = await hybrid({
        text,
        e: query,
        first,
        offset,
        diversity: { lambda, ...(candidates ? { candidates } : {}) },
      });
      expect(res.body.errors).toBeUndefined();
      const take = candidates ?? Math.max(4 * (first + offset), 20);
      const pool = Math.max(4 * (first + offset), 50);
      const want = (await hybridMmr(text, query, { lambda, take, pool, k: first + offset })).slice(offset);
      const got = res.body.data!.hybridSearchDocumentChunks;
      expect({
        run,
        text,
        lambda,
        first,
        offset,
        ids: got.map((m) => m.chunk.rowId),
      }).toEqual({ run, text, lambda, first, offset, ids: want });
      // Each row keeps its own fused score and ranks.
      for (const m of got) expect(m.textRank !== null || m.vectorRank !== null).toBe(true);
    }
  });

  test('lambda 1 is the plain fused order; towards novelty the near-duplicates give way', async () => {
    const dupes = chunks.filter((c) => c.documentId === documentIds[7]);
    const query = dupes[0]!.embedding;
    const text = dupes.map((c) => c.content.split(' ')[1]).join(' or ');
    const plain = (await hybrid({ text, e: query, first: 6 })).body.data!.hybridSearchDocumentChunks;
    const relevance = (
      await hybrid({
        text,
        e: query,
        first: 6,
        diversity: { lambda: 1, candidates: 40 },
      })
    ).body.data!.hybridSearchDocumentChunks;
    expect(relevance.map((m) => m.chunk.rowId)).toEqual(plain.map((m) => m.chunk.rowId));
    const diverse = (await hybrid({ text, e: query, first: 6, diversity: { lambda: 0.3 } })).body.data!.hybridSearchDocumentChunks;
    const count = (ms: HybridMatch[]) => ms.filter((m) => m.chunk.documentId === documentIds[7]).length;
    expect(count(diverse)).toBeLessThan(count(plain));
  });

  test('the search log records the diversity; a bad lambda or pool is a clear error that logs nothing', async () => {
    const query = randomUnit(DIM, rng(606));
    expect(
      (
        await hybrid({
          text: 'river',
          e: query,
          first: 3,
          diversity: { lambda: 0.6, candidates: 9 },
        })
      ).body.errors,
    ).toBeUndefined();
    const row = (await owner.query('select * from sheratan.search_logs order by id desc limit 1')).rows[0];
    expect(row.filters).toMatchObject({
      mode: 'hybrid',
      diversity: { lambda: 0.6, candidates: 9 },
    });
    const before = await searchLogCount();
    for (const [diversity, says] of [
      [{ lambda: 1.5 }, /diversity\.lambda must be between 0 and 1/],
      [{ lambda: -0.1 }, /diversity\.lambda must be between 0 and 1/],
      [{ candidates: 2 }, /diversity\.candidates must be between first \+ offset/],
      [{ candidates: 1001 }, /diversity\.candidates must be between first \+ offset/],
    ] as const) {
      const res = await hybrid({
        text: 'river',
        e: query,
        first: 3,
        diversity,
      });
      expect(res.body.data ?? null).toBeNull();
      expect(res.body.errors?.[0]?.message).toMatch(says);
    }
    expect(await searchLogCount()).toBe(before);
  });
});

describe('more like this', () => {
  const SIMILAR_CHUNKS = `query ($id: UUID!, $first: Int, $filter: DocumentChunkSearchFilter) {
    documentChunkByRowId(rowId: $id) { similarChunks(first: $first, filter: $filter) { similarity distance chunk { rowId documentId } } }
  }`;
  const SIMILAR_DOCUMENTS = `query ($id: UUID!, $first: Int) {
    documentByRowId(rowId: $id) { title similarDocuments(first: $first) { similarity distance document { rowId title } } }
  }`;

  test('similarChunks is the brute-force ranking of the other chunks, filters included', async () => {
    for (const chunk of [chunks[3]!, chunks[20]!, chunks.find((c) => c.documentId === documentIds[7])!]) {
      const res = await h.graphql<{ documentChunkByRowId: { similarChunks: Match[] } }>(SIMILAR_CHUNKS, { variables: { id: chunk.id, first: 8 } });
      expect(res.body.errors).toBeUndefined();
      const got = res.body.data!.documentChunkByRowId.similarChunks;
      const others = chunks.filter((c) => c.id !== chunk.id);
      expectRanking(asRanked(got), bruteForce(chunk.embedding, others, others.length), 8);
      expect(got.map((m) => m.chunk.rowId)).not.toContain(chunk.id);
    }
    const chunk = chunks[0]!;
    const filtered = (
      await h.graphql<{ documentChunkByRowId: { similarChunks: Match[] } }>(SIMILAR_CHUNKS, {
        variables: { id: chunk.id, first: 5, filter: { documentIds: [documentIds[2], documentIds[3]] } },
      })
    ).body.data!.documentChunkByRowId.similarChunks;
    const inTwoDocs = chunks.filter((c) => c.id !== chunk.id && [documentIds[2], documentIds[3]].includes(c.documentId));
    expectRanking(asRanked(filtered), bruteForce(chunk.embedding, inTwoDocs, inTwoDocs.length), 5);
  });

  test('similarChunks under a list runs for every parent in one request', async () => {
    const res = await h.graphql<{ allDocumentChunks: { nodes: Array<{ rowId: string; similarChunks: Match[] }> } }>(
      `{ allDocumentChunks(first: 5, orderBy: ROW_ID_ASC) { nodes { rowId similarChunks(first: 3) { distance chunk { rowId } } } } }`,
    );
    expect(res.body.errors).toBeUndefined();
    for (const node of res.body.data!.allDocumentChunks.nodes) {
      const chunk = byId(node.rowId);
      const others = chunks.filter((c) => c.id !== chunk.id);
      expectRanking(asRanked(node.similarChunks), bruteForce(chunk.embedding, others, others.length), 3);
    }
  });

  test("similarDocuments ranks the other documents by their chunk nearest to this one's mean embedding", async () => {
    for (const d of [0, 4, 7]) {
      const own = chunks.filter((c) => c.documentId === documentIds[d]);
      const mean = own[0]!.embedding.map((_, i) => own.reduce((acc, c) => acc + c.embedding[i]!, 0) / own.length);
      const expected = documentIds
        .filter((id) => id !== documentIds[d])
        .map((id) => ({ id, distance: Math.min(...chunks.filter((c) => c.documentId === id).map((c) => cosineDistance(mean, c.embedding))) }))
        .sort((a, b) => a.distance - b.distance);
      const res = await h.graphql<{ documentByRowId: { similarDocuments: Array<{ distance: number; document: { rowId: string } }> } }>(SIMILAR_DOCUMENTS, {
        variables: { id: documentIds[d], first: 4 },
      });
      expect(res.body.errors).toBeUndefined();
      const got = res.body.data!.documentByRowId.similarDocuments;
      expect(got.map((m) => m.document.rowId)).toEqual(expected.slice(0, 4).map((m) => m.id));
      got.forEach((m, i) => expect(m.distance).toBeCloseTo(expected[i]!.distance, 4));
    }
  });

  test('a document of another tenant is not found, and its copies never count as similar', async () => {
    const res = await h.graphql<{ documentByRowId: null | object }>(SIMILAR_DOCUMENTS, {
      variables: { id: documentIds[0], first: 3 },
      token: h.token('sheratan_app', 'globex'),
    });
    expect(res.body.data!.documentByRowId).toBeNull();
    const own = await h.graphql<{ documentByRowId: { similarDocuments: Array<{ document: { title: string } }> } }>(SIMILAR_DOCUMENTS, {
      variables: { id: documentIds[0], first: 20 },
    });
    expect(own.body.data!.documentByRowId.similarDocuments.map((m) => m.document.title)).not.toContain('globex copy');
    expect(own.body.data!.documentByRowId.similarDocuments).toHaveLength(7);
  });
});

describe('limits and bad input: a clear error, and nothing stored', () => {
  const query = () => randomUnit(DIM, rng(90));
  test.each([
    ['hybrid without text or embedding', () => hybrid({ first: 3 }), /give queryText, embedding or both/],
    [
      'hybrid first above MAX_SEARCH_RESULTS',
      () => hybrid({ text: 'river', first: 101 }),
      /hybridSearchDocumentChunks\(first: 101\) is above the limit of 100 \(MAX_SEARCH_RESULTS\)/,
    ],
    ['hybrid first 0', () => hybrid({ text: 'river', first: 0 }), /first must be at least 1, not 0/],
    ['hybrid negative offset', () => hybrid({ text: 'river', offset: -1 }), /offset must not be negative/],
    ['hybrid rrfK 0', () => hybrid({ text: 'river', rrfK: 0 }), /rrfK must be at least 1, not 0/],
    ['hybrid negative weight', () => hybrid({ text: 'river', tw: -1 }), /textWeight and vectorWeight must not be negative/],
    ['hybrid both weights 0', () => hybrid({ text: 'river', tw: 0, vw: 0 }), /not both 0/],
    ['hybrid candidates above 1000', () => hybrid({ text: 'river', candidates: 5000 }), /candidates must be between first \+ offset \(10\) and 1000, not 5000/],
    ['hybrid maxPerDocument 0', () => hybrid({ text: 'river', perDoc: 0 }), /maxPerDocument must be at least 1, not 0/],
    ['search lambda above 1', () => search({ e: query(), diversity: { lambda: 1.5 } }), /diversity.lambda must be between 0 and 1, not 1.5/],
    [
      'search candidates below first',
      () => search({ e: query(), first: 10, diversity: { candidates: 5 } }),
      /diversity.candidates must be between first \+ offset \(10\) and 1000, not 5/,
    ],
    ['search maxPerDocument 0', () => search({ e: query(), perDoc: 0 }), /maxPerDocument must be at least 1, not 0/],
    [
      'similarChunks first above MAX_SEARCH_RESULTS',
      () => h.graphql(`{ allDocumentChunks(first: 1) { nodes { similarChunks(first: 500) { distance } } } }`),
      /similarChunks\(first: 500\) is above the limit of 100/,
    ],
    [
      'similarDocuments first 0',
      () => h.graphql(`{ allDocuments(first: 1) { nodes { similarDocuments(first: 0) { distance } } } }`),
      /first must be at least 1, not 0/,
    ],
  ])('%s', async (_name, call, message) => {
    const before = await searchLogCount();
    const res = await call();
    expect(res.body.errors?.[0]?.message).toMatch(message);
    expect(await searchLogCount()).toBe(before);
  });
});
