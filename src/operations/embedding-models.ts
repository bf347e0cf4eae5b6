// Changing the embedding model without downtime (`npm run embeddings:migrate`):
// a second column beside the live one, filled while searches go on, then a
// switch in one short transaction and, later, the old column dropped. The
// steps are SQL functions of migration 000013, run as the owner; this module
// reads the state and, for --jobs, queues the re-embedding work.
import type pg from 'pg';

export interface EmbeddingModel {
  name: string;
  dimension: number;
  state: 'live' | 'next' | 'previous';
}

export interface EmbeddingModelStatus {
  models: EmbeddingModel[];
  /** During a migration: chunks that have the new embedding, and those still without it (all tenants). */
  embedded?: number;
  missing?: number;
}

/** The job type `--jobs` queues: one job per document whose chunks need the new model's vectors. */
export const REEMBED_JOB_TYPE = 'embeddings.store';

export async function embeddingModelStatus(client: pg.Client): Promise<EmbeddingModelStatus> {
  const models = (
    await client.query<EmbeddingModel>(
      "select name, dimension, state from sheratan.embedding_models order by case state when 'live' then 0 when 'next' then 1 else 2 end",
    )
  ).rows;
  if (!models.some((m) => m.state === 'next')) return { models };
  const { rows } = await client.query<{ embedded: string; missing: string }>('select embedded, missing from sheratan.embedding_migration()');
  return { models, embedded: Number(rows[0]!.embedded), missing: Number(rows[0]!.missing) };
}

/**
 * Runs `fn` in a transaction that waits at most 10 s for the table's lock:
 * the steps that change its columns take it exclusively for a moment, and
 * should wait for running searches, not queue everyone behind a long
 * transaction.
 */
async function withTableLock<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    await client.query("set local lock_timeout = '10s'");
    const result = await fn();
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
}

export async function startEmbeddingMigration(client: pg.Client, model: string, dimension: number, liveModel: string): Promise<void> {
  await withTableLock(client, () => client.query('select sheratan_private.start_embedding_migration($1, $2, $3)', [model, dimension, liveModel]));
}

/** Returns how many chunks were left without an embedding (only with `force`). */
export async function switchEmbeddingModel(client: pg.Client, force: boolean): Promise<number> {
  const { rows } = await withTableLock(client, () =>
    client.query<{ missing: string }>('select sheratan_private.switch_embedding_model($1) as missing', [force]),
  );
  // The new live column and its index have no statistics yet: without them the
  // planner may cost searches as exact scans (and the embedded engine has no
  // autovacuum to gather them).
  await client.query('analyze sheratan.document_chunks');
  return Number(rows[0]!.missing);
}

export async function dropEmbeddingColumn(client: pg.Client, which: 'next' | 'previous'): Promise<void> {
  await client.query('select sheratan_private.drop_embedding_column($1)', [which]);
}

/**
 * Queues one job per document that has chunks without the new model's
 * vector, in the document's tenant, unless one is already pending or running.
 * A worker (src/client/job-worker.ts) embeds the document's chunks and calls
 * storeEmbeddings. Returns how many jobs were queued.
 */
export async function queueReembedJobs(client: pg.Client, model: string, dimension: number): Promise<number> {
  const { rowCount } = await client.query(
    `insert into sheratan.jobs (tenant, job_type, payload)
     select d.tenant, $1, jsonb_build_object('model', $2::text, 'dimension', $3::integer, 'documentId', d.id)
       from sheratan.documents d
      where exists (select 1 from sheratan.document_chunks c where c.document_id = d.id and c.embedding is not null and c.embedding_next is null)
        and not exists (select 1 from sheratan.jobs j
                         where j.tenant = d.tenant and j.job_type = $1 and j.status in ('pending', 'running')
                           and j.payload ->> 'model' = $2 and j.payload ->> 'documentId' = d.id::text)`,
    [REEMBED_JOB_TYPE, model, dimension],
  );
  return rowCount ?? 0;
}

/** One line per model, and the progress of a migration. */
export function formatEmbeddingStatus(status: EmbeddingModelStatus, liveDimension: number): string {
  if (status.models.length === 0) return `live: vector(${liveDimension}); no model switch has been started\n`;
  const lines = status.models.map((m) => `${m.state}: ${m.name}, vector(${m.dimension})`);
  if (status.embedded !== undefined) {
    const total = status.embedded + status.missing!;
    const share = total === 0 ? 100 : (100 * status.embedded) / total;
    lines.push(`progress: ${status.embedded} of ${total} chunks have the new embedding (${share.toFixed(1)} %), ${status.missing} to go`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `--reembed`: every document with chunks is embedded again by the embedding
 * workers (src/embedding/worker.ts) with the provider the store declared
 * (a gateway or `npm run worker` with EMBEDDING_PROVIDER set): one
 * embed_document job per document, marked to replace vectors made by another
 * model (or brought by clients). Same dimension only: a provider of another
 * dimension needs the model switch (--dimension/--name). Returns the model
 * and how many documents were queued.
 */
export async function queueReembedAll(client: pg.Client): Promise<{ model: string; documents: number }> {
  const { rows } = await client.query<{ model: string; dimension: number }>('select model, dimension from sheratan_private.vectorizer_model()');
  const declared = rows[0];
  if (!declared) {
    throw new Error(
      'no embedding provider has declared itself: start the gateway or npm run worker with EMBEDDING_PROVIDER set (local or openai), then run --reembed again',
    );
  }
  const { rows: queued } = await client.query<{ documents: string }>(
    `with docs as (
       update sheratan.documents d set embedding_status = 'pending', embedding_error = null
        where exists (select 1 from sheratan.document_chunks c where c.document_id = d.id)
        returning d.id, d.tenant)
     select count(sheratan_private.enqueue_embedding(docs.id, docs.tenant, '{"reembed": true}'::jsonb)) as documents from docs`,
  );
  return { model: declared.model, documents: Number(queued[0]!.documents) };
}
