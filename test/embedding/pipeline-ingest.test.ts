// Text in, text out with the real local model on both backends: ingestDocument
// chunks and embeds text (within the request when small, by the workers when
// large), keeps each chunk's offsets and model; bad text is refused before
// anything is stored; searchDocumentChunks(query) and hybrid search embed the
// question; vectorizerStatus counts the tenant's progress.
import { startPipeline, statusOf, INGEST, type IngestedDocument, type PipelineHarness } from './pipeline-support.ts';

let h: PipelineHarness;
beforeAll(async () => {
  h = await startPipeline({
    EMBEDDING_PROVIDER: 'local',
    EMBED_SYNC_MAX_CHARS: '3000',
    CHUNK_MAX_CHARS: '400',
    CHUNK_OVERLAP_CHARS: '40',
    MAX_DOCUMENT_CHARS: '200000',
  });
}, 240_000);
afterAll(() => h?.stop());

const ingest = (input: Record<string, unknown>, tenant?: string) => h.graphql<{ ingestDocument: { document: IngestedDocument } }>(INGEST, { input }, tenant);

const documentCount = async (): Promise<number> => Number((await h.sql<{ n: string }>('select count(*) as n from sheratan.documents'))[0]!.n);

const PARAGRAPHS = [
  'HNSW indexes can be built on an empty table, so vector search works before any data is loaded.',
  'IVFFlat indexes need data first: their lists are chosen from the rows present when the index is built.',
  'Row-level security limits every query to the rows of the caller’s tenant, taken from the token.',
  'Backups are written with pg_dump and restored with pg_restore; the gateway may back up before migrating.',
];

/** Texts of many shapes: scripts, emoji, long and short paragraphs, odd spacing. */
function generatedTexts(): string[] {
  const pieces = [
    'Ein Satz auf Deutsch. Noch einer, mit Umlauten: äöü ß.',
    '日本語の文です。二つ目の文もあります。',
    'Emoji 🧪🚀 in the middle 👩‍💻 of text, and a flag 🇫🇷.',
    'العربية تكتب من اليمين إلى اليسار. جملة ثانية.',
    'Ελληνικά κείμενα. Δεύτερη πρόταση εδώ.',
    'A very long sentence '.repeat(40) + 'ends here.',
    'Short.',
  ];
  const out: string[] = [];
  for (let i = 0; i < 6; i++) {
    const n = 2 + (i % 4);
    const paragraphs = Array.from({ length: n }, (_, j) => pieces[(i * 3 + j) % pieces.length]!);
    out.push(paragraphs.join(i % 2 ? '\n\n' : '\r\n\r\n   '));
  }
  return out;
}

test('a small document is chunked and embedded within the request: EMBEDDED, offsets into the content, the model recorded', async () => {
  const content = PARAGRAPHS.join('\n\n');
  const res = await ingest({ title: 'indexes', content, source: 'test' });
  expect(res.body.errors).toBeUndefined();
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('EMBEDDED');
  expect(doc.chunks.nodes.length).toBeGreaterThan(0);
  for (const chunk of doc.chunks.nodes) {
    expect(chunk.content).toBe(content.slice(chunk.startOffset!, chunk.endOffset!));
    expect(chunk.embeddingModel).toBe('local:use-lite-512');
    expect(chunk.embedding).toHaveLength(512);
  }
});

test('every chunk of any text is the document’s own text between its offsets, and embedded (other scripts, emoji)', async () => {
  for (const content of generatedTexts()) {
    const res = await ingest({ title: 'generated', content });
    expect(res.body.errors).toBeUndefined();
    const doc = res.body.data!.ingestDocument.document;
    const nodes = doc.chunks.nodes;
    expect(nodes.length).toBeGreaterThan(0);
    nodes.forEach((chunk, i) => {
      expect(chunk.chunkIndex).toBe(i);
      expect(chunk.content).toBe(content.slice(chunk.startOffset!, chunk.endOffset!));
      expect(chunk.embedding!.every((x) => Number.isFinite(x))).toBe(true);
    });
    // Together the chunks cover every non-blank part of the text.
    const covered = new Array<boolean>(content.length).fill(false);
    for (const c of nodes) for (let k = c.startOffset!; k < c.endOffset!; k++) covered[k] = true;
    content.split('').forEach((ch, k) => {
      if (/\S/.test(ch)) expect(covered[k]).toBe(true);
    });
    expect(doc.embeddingStatus).toBe('EMBEDDED');
  }
});

test('chunks sent with text only are embedded and located; chunks with their own embedding stay as they are', async () => {
  const own = Array.from({ length: 512 }, (_, i) => (i === 3 ? 1 : 0));
  const content = `${PARAGRAPHS[0]} ${PARAGRAPHS[1]}`;
  const res = await ingest({
    title: 'mixed',
    content,
    chunks: [{ content: PARAGRAPHS[0] }, { content: PARAGRAPHS[1], embedding: own }],
  });
  expect(res.body.errors).toBeUndefined();
  const [first, second] = res.body.data!.ingestDocument.document.chunks.nodes;
  expect(first).toMatchObject({ embeddingModel: 'local:use-lite-512', startOffset: 0, endOffset: PARAGRAPHS[0]!.length });
  expect(first!.embedding).toHaveLength(512);
  expect(second).toMatchObject({ embeddingModel: null, embedding: own, startOffset: PARAGRAPHS[0]!.length + 1 });
});

test('a document above EMBED_SYNC_MAX_CHARS is accepted PENDING and chunked and embedded by the workers', async () => {
  const content = Array.from({ length: 30 }, (_, i) => `Paragraph ${i}: ${PARAGRAPHS[i % 4]}`).join('\n\n');
  expect(content.length).toBeGreaterThan(3000);
  const res = await ingest({ title: 'large', content });
  expect(res.body.errors).toBeUndefined();
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'embedded', 120_000, 'the large document to be embedded');
  const s = await statusOf(h, doc.rowId);
  expect(s.chunks).toBeGreaterThan(3);
  expect(s.missing).toBe(0);
  const bad = await h.sql(
    `select c.chunk_index from sheratan.document_chunks c join sheratan.documents d on d.id = c.document_id
      where d.id = $1 and (substr(d.content, c.start_offset + 1, c.end_offset - c.start_offset) <> c.content or c.embedding_model is null)`,
    [doc.rowId],
  );
  expect(bad).toEqual([]);
});

test('empty or whitespace text, and NUL, are refused with a clear error and nothing is stored', async () => {
  const before = await documentCount();
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ title: 'empty', content: '' }, 'EMPTY_TEXT'],
    [{ title: 'blank', content: ' \n\t\u00a0 ' }, 'EMPTY_TEXT'],
    [{ title: 'blank chunk', content: 'x', chunks: [{ content: 'fine' }, { content: '   ' }] }, 'EMPTY_TEXT'],
    [{ title: 'nul', content: 'before\u0000after' }, 'TEXT_HAS_NUL'],
    [{ title: 'nul chunk', chunks: [{ content: 'a\u0000b' }] }, 'TEXT_HAS_NUL'],
  ];
  for (const [input, code] of cases) {
    const res = await ingest(input);
    expect(res.body.errors?.[0]?.extensions?.code).toBe(code);
    // Named by where it is: NUL by the request limits (any argument), the rest by the ingest.
    expect(res.body.errors![0]!.message).toMatch(/ingestDocument(: |\(input\.)(content|chunks\[\d\]\.content)/);
  }
  expect(await documentCount()).toBe(before);
});

test('a document above MAX_DOCUMENT_CHARS is refused before any work, naming the limit', async () => {
  const before = await documentCount();
  const res = await ingest({ title: 'huge', content: 'word '.repeat(40_001) });
  expect(res.body.errors?.[0]?.extensions?.code).toBe('DOCUMENT_TOO_LARGE');
  expect(res.body.errors![0]!.message).toMatch(/200005 characters, above the limit of 200000 \(MAX_DOCUMENT_CHARS\)/);
  expect(await documentCount()).toBe(before);
});

test('searchDocumentChunks(query) finds the passage of a paraphrased question first, and the search log says it was text', async () => {
  await ingest({ title: 'corpus', content: PARAGRAPHS.join('\n\n') }, 'search-tenant');
  const res = await h.graphql<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>(
    `{ searchDocumentChunks(query: "Which vector index works before any data is loaded?", first: 3) { similarity chunk { content } } }`,
    undefined,
    'search-tenant',
  );
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.searchDocumentChunks[0]!.chunk.content).toContain('HNSW');
  const [logged] = await h.sql<{ query_text: string; filters: Record<string, unknown> }>(
    "select query_text, filters from sheratan.search_logs where tenant = 'search-tenant' order by id desc limit 1",
  );
  expect(logged).toMatchObject({ query_text: 'Which vector index works before any data is loaded?', filters: { query: 'text' } });
});

test('exactly one of embedding and query: both or neither is a clear error, as is blank, too long or NUL text', async () => {
  const vector = Array.from({ length: 512 }, () => 0.1);
  const both = await h.graphql(`query ($v: Vector) { searchDocumentChunks(embedding: $v, query: "x") { distance } }`, { v: vector });
  expect(both.body.errors?.[0]).toMatchObject({ extensions: { code: 'EMBEDDING_OR_QUERY_REQUIRED' } });
  const neither = await h.graphql(`{ searchDocumentChunks(first: 1) { distance } }`);
  expect(neither.body.errors?.[0]).toMatchObject({ extensions: { code: 'EMBEDDING_OR_QUERY_REQUIRED' } });
  const blank = await h.graphql(`{ searchDocumentChunks(query: "  ") { distance } }`);
  expect(blank.body.errors?.[0]).toMatchObject({ extensions: { code: 'EMPTY_TEXT' } });
  const long = await h.graphql(`query ($q: String) { searchDocumentChunks(query: $q) { distance } }`, { q: 'why '.repeat(501) });
  expect(long.body.errors?.[0]).toMatchObject({ extensions: { code: 'QUERY_TEXT_TOO_LONG' } });
  expect(long.body.errors![0]!.message).toMatch(/MAX_QUERY_TEXT_LENGTH/);
  const nul = await h.graphql(`query ($q: String) { searchDocumentChunks(query: $q) { distance } }`, { q: 'a\u0000b' });
  expect(nul.body.errors?.[0]).toMatchObject({ extensions: { code: 'TEXT_HAS_NUL' } });
  const byVector = await h.graphql(`query ($v: Vector) { searchDocumentChunks(embedding: $v, first: 1) { distance } }`, { v: vector });
  expect(byVector.body.errors).toBeUndefined();
});

test('hybridSearchDocumentChunks(queryText) embeds the text for its vector side', async () => {
  await ingest({ title: 'corpus', content: PARAGRAPHS.join('\n\n') }, 'hybrid-tenant');
  const res = await h.graphql<{ hybridSearchDocumentChunks: Array<{ vectorRank: number | null; textRank: number | null; chunk: { content: string } }> }>(
    `{ hybridSearchDocumentChunks(queryText: "which index works on an empty table", first: 3) { vectorRank textRank chunk { content } } }`,
    undefined,
    'hybrid-tenant',
  );
  expect(res.body.errors).toBeUndefined();
  const results = res.body.data!.hybridSearchDocumentChunks;
  expect(results[0]!.chunk.content).toContain('HNSW');
  expect(results.every((r) => r.vectorRank !== null)).toBe(true);
});

test('vectorizerStatus counts the caller’s tenant only', async () => {
  await ingest({ title: 'one', content: 'Counting documents per tenant.' }, 'count-a');
  await ingest({ title: 'two', content: 'Another tenant’s document.' }, 'count-b');
  const res = await h.graphql<{ vectorizerStatus: Record<string, unknown> }>(
    '{ vectorizerStatus { model dimension pendingDocuments embeddedDocuments failedDocuments pendingChunks embeddedChunks } }',
    undefined,
    'count-a',
  );
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.vectorizerStatus).toEqual({
    model: 'local:use-lite-512',
    dimension: 512,
    pendingDocuments: '0',
    embeddedDocuments: '1',
    failedDocuments: '0',
    pendingChunks: '0',
    embeddedChunks: '1',
  });
});
