// `npm run worker` on both backends: a gateway with its built-in worker off
// (EMBEDDING_WORKER_CONCURRENCY=0) still queues the work of changed text, and
// a worker process of its own (another machine's, in production) embeds it,
// logged in as the gateway is, and stops in order on SIGTERM.
import { runCli } from '../support/processes.ts';
import { startPipeline, statusOf, INGEST, type IngestedDocument, type PipelineHarness } from './pipeline-support.ts';

let h: PipelineHarness;
const ENV = { EMBEDDING_PROVIDER: 'local', EMBED_SYNC_MAX_CHARS: '100', EMBEDDING_WORKER_CONCURRENCY: '0' };
beforeAll(async () => {
  h = await startPipeline(ENV);
}, 240_000);
afterAll(() => h?.stop());

test('with the built-in worker off, documents wait PENDING; npm run worker embeds them and stops on SIGTERM', async () => {
  const res = await h.graphql<{ ingestDocument: { document: IngestedDocument } }>(INGEST, {
    input: { title: 'for the worker', content: 'A worker process on another machine embeds this document. It has more text than EMBED_SYNC_MAX_CHARS (100), so the request leaves it to the workers.' },
  });
  expect(res.body.errors).toBeUndefined();
  const doc = res.body.data!.ingestDocument.document;
  expect(doc.embeddingStatus).toBe('PENDING');
  const [job] = await h.sql<{ status: string }>("select status from sheratan.jobs where job_type = 'embed_document' and payload ->> 'documentId' = $1", [doc.rowId]);
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
