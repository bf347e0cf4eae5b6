// Never stale, with the real local model on both backends: a change of a
// document's content (GraphQL or SQL) or of a chunk's text marks it PENDING
// and the workers make its chunks and vectors again; bulk loads (COPY) are
// embedded by the workers; one tenant's large document does not keep another
// tenant's small one waiting; embeddings:migrate --reembed goes through the
// same workers.
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { queueReembedAll } from '../../src/operations/embedding-models.ts';
import { startPipeline, statusOf, INGEST, type IngestedDocument, type PipelineHarness } from './pipeline-support.ts';

let h: PipelineHarness;
beforeAll(async () => {
  h = await startPipeline({
    EMBEDDING_PROVIDER: 'local',
    EMBED_SYNC_MAX_CHARS: '1000',
    CHUNK_MAX_CHARS: '300',
    CHUNK_OVERLAP_CHARS: '30',
    EMBEDDING_BATCH_SIZE: '4',
    EMBEDDING_WORKER_CONCURRENCY: '1',
  });
}, 240_000);
afterAll(() => h?.stop());

const ingest = async (input: Record<string, unknown>, tenant?: string): Promise<IngestedDocument> => {
  const res = await h.graphql<{ ingestDocument: { document: IngestedDocument } }>(INGEST, { input }, tenant);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.ingestDocument.document;
};
const embedded = (id: string) => async () => (await statusOf(h, id)).embedding_status === 'embedded';

test('a change of content through GraphQL marks the document PENDING; its chunks are made again from the new text', async () => {
  const doc = await ingest({ title: 'changing', content: 'Apples grow on trees in orchards.' });
  expect(doc.embeddingStatus).toBe('EMBEDDED');
  const res = await h.graphql<{ updateDocumentByRowId: { document: { embeddingStatus: string } } }>(
    `mutation ($id: UUID!) { updateDocumentByRowId(input: { rowId: $id, documentPatch: { content: "Submarines dive under the ocean waves." } }) { document { embeddingStatus } } }`,
    { id: doc.rowId },
  );
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.updateDocumentByRowId.document.embeddingStatus).toBe('PENDING');
  await h.until(embedded(doc.rowId), 60_000, 'the changed document to be embedded');
  const chunks = await h.sql<{ content: string; model: string; start_offset: number }>(
    'select content, embedding_model as model, start_offset from sheratan.document_chunks where document_id = $1 order by chunk_index',
    [doc.rowId],
  );
  expect(chunks.map((c) => c.content)).toEqual(['Submarines dive under the ocean waves.']);
  expect(chunks[0]).toMatchObject({ model: 'local:use-lite-512', start_offset: 0 });
});

test('a change of a chunk’s text in SQL drops its stale vector and the workers embed the new text', async () => {
  const doc = await ingest({ title: 'chunk edit', content: 'The cat sleeps on the warm windowsill.' });
  const [before] = await h.sql<{ id: string; embedding: string }>('select id, embedding::text from sheratan.document_chunks where document_id = $1', [
    doc.rowId,
  ]);
  await h.sql("update sheratan.document_chunks set content = 'Rockets launch from the coast at dawn.' where id = $1", [before!.id]);
  const [pending] = await h.sql<{ embedding: string | null; status: string }>(
    'select c.embedding::text as embedding, d.embedding_status::text as status from sheratan.document_chunks c join sheratan.documents d on d.id = c.document_id where c.id = $1',
    [before!.id],
  );
  expect(pending).toEqual({ embedding: null, status: 'pending' });
  await h.until(embedded(doc.rowId), 60_000, 'the edited chunk to be embedded');
  const [after] = await h.sql<{ embedding: string }>('select embedding::text from sheratan.document_chunks where id = $1', [before!.id]);
  expect(after!.embedding).not.toBeNull();
  expect(after!.embedding).not.toBe(before!.embedding);
});

test('a chunk updated with its text and its own new vector keeps that vector', async () => {
  const doc = await ingest({ title: 'own vector', content: 'Bring your own vector.' });
  const own = `[${Array.from({ length: 512 }, (_, i) => (i === 7 ? 1 : 0)).join(',')}]`;
  await h.sql("update sheratan.document_chunks set content = 'New text, own vector.', embedding = $2::vector where document_id = $1", [doc.rowId, own]);
  const [row] = await h.sql<{ same: boolean; status: string }>(
    'select c.embedding::text = $2::vector::text as same, d.embedding_status::text as status from sheratan.document_chunks c join sheratan.documents d on d.id = c.document_id where d.id = $1',
    [doc.rowId, own],
  );
  expect(row).toEqual({ same: true, status: 'embedded' });
});

test('a bulk load with COPY is chunked and embedded by the workers, in each row’s tenant', async () => {
  const client = new pg.Client(h.gateway.db.ownerUrl);
  await client.connect();
  try {
    const rows = Array.from({ length: 5 }, (_, i) => `bulk\tcopy-${i}\tBulk loaded document number ${i} about lighthouses and ships.\n`).join('');
    await pipeline(Readable.from([rows]), client.query(copyFrom('copy sheratan.documents (tenant, title, content) from stdin')));
  } finally {
    await client.end();
  }
  const ids = (await h.sql<{ id: string; status: string }>("select id, embedding_status::text as status from sheratan.documents where tenant = 'bulk'")).map(
    (r) => r.id,
  );
  expect(ids).toHaveLength(5);
  for (const id of ids) await h.until(embedded(id), 60_000, 'the copied documents to be embedded');
  const jobs = await h.sql<{ tenant: string }>(
    "select distinct tenant from sheratan.jobs where job_type = 'embed_document' and payload ->> 'documentId' = any ($1)",
    [ids],
  );
  expect(jobs).toEqual([{ tenant: 'bulk' }]);
});

test('one tenant’s large document does not keep another tenant’s small one waiting (fair share of the worker)', async () => {
  const big = Array.from({ length: 80 }, (_, i) => `Section ${i} of the big manual explains one more detail of the system.`).join('\n\n');
  const large = await ingest({ title: 'big', content: big }, 'big-tenant');
  expect(large.embeddingStatus).toBe('PENDING');
  // Let the worker start on it.
  await h.until(async () => (await statusOf(h, large.rowId)).chunks > 0, 60_000, 'the big document to be chunked');
  const small = await ingest({ title: 'small', content: 'Short note. '.repeat(100) }, 'small-tenant');
  expect(small.embeddingStatus).toBe('PENDING');
  await h.until(embedded(small.rowId), 60_000, 'the small document to be embedded');
  const bigNow = await statusOf(h, large.rowId);
  expect(bigNow.missing).toBeGreaterThan(0);
  await h.until(embedded(large.rowId), 120_000, 'the big document to be embedded');
});

test('embeddings:migrate --reembed embeds every document again through the workers (client vectors included)', async () => {
  const own = Array.from({ length: 512 }, (_, i) => (i === 11 ? 1 : 0));
  const doc = await ingest({ title: 'client vectors', content: 'Client text.', chunks: [{ content: 'Client text.', embedding: own }] }, 'reembed');
  const owner = new pg.Client(h.gateway.db.ownerUrl);
  await owner.connect();
  try {
    const queued = await queueReembedAll(owner);
    expect(queued.model).toBe('local:use-lite-512');
    expect(queued.documents).toBeGreaterThan(0);
  } finally {
    await owner.end();
  }
  await h.until(
    async () =>
      (await h.sql<{ model: string | null }>('select embedding_model as model from sheratan.document_chunks where document_id = $1', [doc.rowId]))[0]!.model !==
      null,
    120_000,
    'the client vector to be replaced',
  );
  await h.until(embedded(doc.rowId), 60_000, 'the document to be embedded again');
});

test('the workers’ steps work within the caller’s tenant only: another tenant’s document, chunks and job are out of reach', async () => {
  const doc = await ingest({ title: 'private', content: 'Tenant A keeps this text to itself.' }, 'tenant-a');
  const [model] = await h.sql<{ model: string }>('select model from sheratan_private.vectorizer');
  // Tenant A's own embedding job (its text changed).
  await h.sql("update sheratan.documents set content = 'Tenant A changed its text.' where id = $1", [doc.rowId]);
  const [job] = await h.sql<{ id: string; locked_by: string | null }>(
    "select id, locked_by from sheratan.jobs where job_type = 'embed_document' and tenant = 'tenant-a' order by id desc limit 1",
  );
  await h.until(embedded(doc.rowId), 60_000, 'tenant A’s document to be embedded again');
  const [chunk] = await h.sql<{ id: string; content: string; embedding: string }>(
    'select id, content, embedding::text from sheratan.document_chunks where document_id = $1',
    [doc.rowId],
  );
  const other = `[${Array.from({ length: 512 }, (_, i) => (i === 1 ? 1 : 0)).join(',')}]`;
  // Each call in its own transaction as tenant B's API role, as the worker makes them (committed: what it did stays).
  const asTenantB = async (text: string, values: unknown[]): Promise<unknown> => {
    const client = new pg.Client(h.gateway.db.authUrl);
    await client.connect();
    try {
      await client.query('begin');
      await client.query(
        "select set_config('role', 'sheratan_app', true), set_config('jwt.claims.tenant', 'tenant-b', true), set_config('jwt.claims.sub', 'mallory', true)",
      );
      const { rows } = await client.query<{ r: unknown }>(text, values);
      await client.query('commit');
      return rows[0]!.r;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      await client.end();
    }
  };
  expect(await asTenantB('select sheratan_private.store_chunk_vectors($1, $2, $3, $4) as r', [[chunk!.id], [chunk!.content], [other], model!.model])).toBe(0);
  expect(await asTenantB('select sheratan_private.rechunk_document($1, $2, $3) as r', [doc.rowId, '[]', 'Tenant A changed its text.'])).toBe(-1);
  await expect(asTenantB('select sheratan_private.insert_prepared_chunks($1, $2) as r', [doc.rowId, '[{"content": "planted"}]'])).rejects.toThrow(
    /no document .* in this tenant/,
  );
  expect(await asTenantB("select sheratan_private.finish_embedding_job($1, $2, 'x', 0, true) as r", [job!.id, job!.locked_by ?? 'w'])).toBe('lost');
  // The declared model only: no one records vectors as made by another model.
  await expect(
    asTenantB('select sheratan_private.store_chunk_vectors($1, $2, $3, $4) as r', [[chunk!.id], [chunk!.content], [other], 'forged:model']),
  ).rejects.toThrow(/the store embeds with/);
  const [after] = await h.sql<{ embedding: string; n: string }>(
    'select embedding::text, (select count(*) from sheratan.document_chunks where document_id = $2) as n from sheratan.document_chunks where id = $1',
    [chunk!.id, doc.rowId],
  );
  expect(after).toEqual({ embedding: chunk!.embedding, n: '1' });
});
