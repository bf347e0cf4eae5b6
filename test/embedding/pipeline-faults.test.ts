// Faults of the embedding provider, each its own test, on both backends: the
// gateway uses the `openai` provider against a real OpenAI-compatible HTTP
// server in its own process (test/support/openai-server.ts, answering with the
// local model's vectors), whose faults each test switches on. A provider that
// is down, slow or rate limiting leaves ingested documents PENDING, retried
// with back-off and FAILED with the error after EMBEDDING_JOB_ATTEMPTS; one that
// answers nonsense stores nothing; a search by text answers an error naming
// the provider; a 50 MB document is refused before any work.
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { startPipeline, statusOf, INGEST, type IngestedDocument, type PipelineHarness } from './pipeline-support.ts';

let server: OpenAiServer;
let h: PipelineHarness;
const ATTEMPTS = 3;

beforeAll(async () => {
  server = await startOpenAiServer();
  h = await startPipeline({
    EMBEDDING_PROVIDER: 'openai',
    EMBEDDING_BASE_URL: server.url,
    EMBEDDING_MODEL: 'text-embedding-3-small',
    VECTOR_DIMENSION: '512',
    // The provider's own retries off: each fault reaches the pipeline at once.
    EMBEDDING_MAX_RETRIES: '0',
    EMBEDDING_TIMEOUT_MS: '1000',
    EMBEDDING_JOB_ATTEMPTS: String(ATTEMPTS),
    EMBEDDING_RETRY_BASE_MS: '200',
    EMBEDDING_WORKER_CONCURRENCY: '2',
    QUERY_CACHE_SIZE: '0',
    MAX_BODY_BYTES: String(64 * 1024 * 1024),
    // A 50 MB document's estimated cost is above the default MAX_QUERY_COST (which refuses it too): this reaches MAX_DOCUMENT_CHARS.
    MAX_QUERY_COST: '10000000',
  });
}, 240_000);
afterAll(async () => {
  await h?.stop();
  await server?.stop();
});
afterEach(async () => {
  await server.setFault({});
});

const ingest = (input: Record<string, unknown>, tenant = 'faults') => h.graphql<{ ingestDocument: { document: IngestedDocument } }>(INGEST, { input }, tenant);
const documentCount = async (): Promise<number> => Number((await h.sql<{ n: string }>('select count(*) as n from sheratan.documents'))[0]!.n);
const jobOf = async (id: string) =>
  (
    await h.sql<{ status: string; attempts: number; last_error: string | null }>(
      "select status, attempts, last_error from sheratan.jobs where job_type = 'embed_document' and payload ->> 'documentId' = $1 order by id desc limit 1",
      [id],
    )
  )[0];
const host = (): string => new URL(server.url).host;

test('provider down for a while: the document is accepted PENDING, retried with back-off, and EMBEDDED once it answers', async () => {
  // The request's call and the worker's first attempt fail; the second attempt succeeds.
  await server.setFault({ serverError: { count: 2 } });
  const res = await ingest({ title: 'down a while', content: 'The lighthouse keeper logs every passing ship.' });
  expect(res.body.errors).toBeUndefined();
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'embedded', 60_000, 'the document to be embedded after the outage');
  expect(await statusOf(h, doc.rowId)).toMatchObject({ embedding_error: null, missing: 0 });
  expect(await jobOf(doc.rowId)).toMatchObject({ status: 'completed', last_error: null });
});

test(`provider down for good: FAILED after ${ATTEMPTS} attempts with the provider's error`, async () => {
  await server.setFault({ serverError: { count: 1000 } });
  const res = await ingest({ title: 'down for good', content: 'Nobody will embed this sentence today.' });
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'failed', 60_000, 'the document to fail');
  const status = await statusOf(h, doc.rowId);
  expect(status.embedding_error).toMatch(/^EMBEDDING_PROVIDER_UNAVAILABLE: /);
  expect(status.embedding_error).toContain(host());
  expect(await jobOf(doc.rowId)).toMatchObject({ status: 'failed', attempts: ATTEMPTS });
  const graph = await h.graphql<{ documentByRowId: { embeddingStatus: string; embeddingError: string } }>(
    'query ($id: UUID!) { documentByRowId(rowId: $id) { embeddingStatus embeddingError } }',
    { id: doc.rowId },
    'faults',
  );
  expect(graph.body.data!.documentByRowId).toEqual({ embeddingStatus: 'FAILED', embeddingError: status.embedding_error });
  // A later change of its text tries again, now that the provider answers.
  await server.setFault({});
  await h.sql("update sheratan.documents set content = 'The provider answers again.' where id = $1", [doc.rowId]);
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'embedded', 60_000, 'the changed document to be embedded');
});

test('a provider slower than EMBEDDING_TIMEOUT_MS: the document is PENDING, and FAILED with the timeout after the attempts', async () => {
  await server.setFault({ delayMs: 1500 });
  const res = await ingest({ title: 'slow', content: 'A slow provider keeps everyone waiting.' });
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'failed', 90_000, 'the slow document to fail');
  expect((await statusOf(h, doc.rowId)).embedding_error).toMatch(/^EMBEDDING_PROVIDER_TIMEOUT: .*EMBEDDING_TIMEOUT_MS/);
});

test('a 429 storm: the workers wait as Retry-After says and embed the document once it passes', async () => {
  await server.setFault({ rateLimit: { count: 3, retryAfter: '1' } });
  const before = (await server.calls()).length;
  const res = await ingest({ title: 'storm', content: 'Too many requests at once.' });
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'embedded', 60_000, 'the document to be embedded after the storm');
  const calls = (await server.calls()).slice(before).filter((c) => c.path.endsWith('/embeddings'));
  const limited = calls.filter((c) => c.status === 429);
  // (The request's own call and at least one worker attempt met the storm.)
  expect(limited.length).toBeGreaterThanOrEqual(2);
  // Each call came at least the Retry-After second after the 429 before it (the request's own call is the first).
  const after = calls.slice(calls.indexOf(limited[0]!) + 1);
  let previous = limited[0]!.at;
  for (const call of after) {
    expect(call.at - previous).toBeGreaterThanOrEqual(950);
    previous = call.at;
  }
});

test.each([
  [{ wrongDimension: true }, 'EMBEDDING_DIMENSION_MISMATCH'],
  [{ nan: true }, 'EMBEDDING_BAD_RESPONSE'],
  [{ malformed: true }, 'EMBEDDING_BAD_RESPONSE'],
  [{ wrongCount: true }, 'EMBEDDING_BAD_RESPONSE'],
])('a provider answering %j: ingestDocument is an error (%s) and nothing is stored', async (fault, code) => {
  await server.setFault(fault);
  const before = await documentCount();
  const res = await ingest({ title: 'nonsense', content: 'First sentence here. Second sentence there.', chunks: [{ content: 'One.' }, { content: 'Two.' }] });
  expect(res.body.errors?.[0]?.extensions?.code).toBe(code);
  expect(res.body.errors![0]!.message).toContain(host());
  expect(await documentCount()).toBe(before);
});

test('search by text while the provider is down: an error naming the provider, no results', async () => {
  await server.setFault({ serverError: { count: 1000 } });
  const res = await h.graphql(`{ searchDocumentChunks(query: "where are the ships?") { distance } }`, undefined, 'faults');
  expect(res.body.errors?.[0]?.extensions?.code).toBe('EMBEDDING_PROVIDER_UNAVAILABLE');
  expect(res.body.errors![0]!.message).toContain(host());
  const hybrid = await h.graphql(`{ hybridSearchDocumentChunks(queryText: "where are the ships?") { score } }`, undefined, 'faults');
  expect(hybrid.body.errors?.[0]?.extensions?.code).toBe('EMBEDDING_PROVIDER_UNAVAILABLE');
});

test('a 50 MB document is refused before any work with the limit named (MAX_DOCUMENT_CHARS), nothing stored, no provider call', async () => {
  const before = await documentCount();
  const calls = (await server.calls()).length;
  const content = 'All work and no play. '.repeat(Math.ceil((50 * 1024 * 1024) / 22));
  const res = await ingest({ title: 'fifty megabytes', content });
  expect(res.body.errors?.[0]?.extensions?.code).toBe('DOCUMENT_TOO_LARGE');
  expect(res.body.errors![0]!.message).toMatch(/above the limit of 5000000 \(MAX_DOCUMENT_CHARS\)/);
  expect(await documentCount()).toBe(before);
  expect((await server.calls()).length).toBe(calls);
}, 120_000);
