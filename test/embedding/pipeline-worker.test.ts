// `npm run worker` and EMBEDDING_TENANT_RATE on both backends: a gateway with its built-in worker off
// (EMBEDDING_WORKER_CONCURRENCY=0) still queues the work of changed text, and
// a worker process of its own (another machine's, in production) embeds it,
// logged in as the gateway is, and stops in order on SIGTERM.
import { runCli } from '../support/processes.ts';
import { startPipeline, statusOf, INGEST, type IngestedDocument, type PipelineHarness } from './pipeline-support.ts';

let h: PipelineHarness;
const ENV = { EMBEDDING_PROVIDER: 'local', EMBED_SYNC_MAX_CHARS: '100', EMBEDDING_WORKER_CONCURRENCY: '0' };
beforeAll(async () => {
  // The gateway's tenants may send 3 texts a second to the provider (the worker process has its own rate).
  h = await startPipeline({ ...ENV, EMBEDDING_TENANT_RATE: '3' });
}, 240_000);
afterAll(() => h?.stop());

test('with the built-in worker off, documents wait PENDING; npm run worker embeds them and stops on SIGTERM', async () => {
  const res = await h.graphql<{ ingestDocument: { document: IngestedDocument } }>(INGEST, {
    input: {
      title: 'for the worker',
      content:
        'A worker process on another machine embeds this document. It has more text than EMBED_SYNC_MAX_CHARS (100), so the request leaves it to the workers.',
    },
  });
  expect(res.body.errors).toBeUndefined();
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  const [job] = await h.sql<{ status: string }>("select status from sheratan.jobs where job_type = 'embed_document' and payload ->> 'documentId' = $1", [
    doc.rowId,
  ]);
  expect(job).toEqual({ status: 'pending' });

  const worker = runCli(['worker', '--concurrency', '1'], { ...h.database.env, ...ENV, LOG_LEVEL: 'info' });
  try {
    await h.until(async () => (await statusOf(h, doc.rowId)).embedding_status === 'embedded', 120_000, 'the worker process to embed the document');
  } finally {
    worker.child.kill('SIGTERM');
  }
  const exit = await worker.exited;
  expect(exit.code).toBe(0);
  expect(worker.output()).toMatch(/embedding worker running/);
  // It worked as the API role within the tenant, and says who it was in the audit trail.
  const [audit] = await h.sql<{ user_id: string }>(
    "select user_id from sheratan.audit_logs where resource = 'documents/' || $1 || '/chunks' order by id desc limit 1",
    [doc.rowId],
  );
  expect(audit).toEqual({ user_id: 'embedding-worker' });
});

test('npm run worker without an embedding provider refuses to start, naming the setting', async () => {
  const worker = runCli(['worker'], { ...h.database.env, EMBEDDING_PROVIDER: 'none' });
  const exit = await worker.exited;
  expect(exit.code).not.toBe(0);
  expect(worker.output()).toMatch(/EMBEDDING_PROVIDER is none/);
});

test('EMBEDDING_TENANT_RATE: a tenant’s burst above its rate is told so (EMBEDDING_RATE_LIMITED); another tenant is not affected', async () => {
  const search = (text: string, tenant: string) =>
    h.graphql(`query ($q: String) { searchDocumentChunks(query: $q, first: 1) { distance } }`, { q: text }, tenant);
  // Eight at once against a bucket of three a second.
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => search(`question number ${i}`, 'greedy')));
  const limited = answers.filter((a) => a.body.errors?.[0]?.extensions?.code === 'EMBEDDING_RATE_LIMITED');
  expect(limited.length).toBeGreaterThanOrEqual(1);
  expect(answers.length - limited.length).toBeGreaterThanOrEqual(3);
  expect(limited[0]!.body.errors![0]!.message).toMatch(/above its embedding rate of 3 texts per second \(EMBEDDING_TENANT_RATE\)/);
  // Another tenant searches as usual.
  expect((await search('another tenant asks', 'modest')).body.errors).toBeUndefined();
});
