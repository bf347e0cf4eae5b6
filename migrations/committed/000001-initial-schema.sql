--! Previous: -
--! Hash: sha1:60a54fdb4a0cc10d64c66071a93d09ed681aceeb
--! Message: initial schema

-- The seed guide's schema (SPEC §4). Idempotent so that `db:watch` can re-run it.

create extension if not exists vector;

drop schema if exists sheratan cascade;
drop schema if exists sheratan_private cascade;
create schema sheratan;
create schema sheratan_private;
comment on schema sheratan is 'Sheratan Store: documents, embedded chunks, jobs and logs for retrieval systems.';
comment on schema sheratan_private is 'Internals never exposed over GraphQL.';

-- updated_at maintenance, shared by every table that has one.
create function sheratan_private.tg__timestamps() returns trigger
  language plpgsql
  set search_path = pg_catalog, public, pg_temp
as $$
begin
  new.created_at = (case when tg_op = 'INSERT' then now() else old.created_at end);
  new.updated_at = (case when tg_op = 'UPDATE' and old.updated_at >= now() then old.updated_at + interval '1 millisecond' else now() end);
  return new;
end;
$$;
comment on function sheratan_private.tg__timestamps() is 'Trigger: keeps created_at fixed and bumps updated_at on every change.';

--------------------------------------------------------------------------------
create table sheratan.documents (
  id uuid primary key default gen_random_uuid(),
  tenant text not null,
  title text not null check (length(title) between 1 and 1000),
  content text not null default '',
  source text,
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index documents_created_at_idx on sheratan.documents (created_at);
create index documents_tenant_source_idx on sheratan.documents (tenant, source);
create trigger _100_timestamps before insert or update on sheratan.documents
  for each row execute procedure sheratan_private.tg__timestamps();
comment on table sheratan.documents is 'A source document; its text is split into `DocumentChunk`s for retrieval.';
comment on column sheratan.documents.id is 'Unique identifier of the document.';
comment on column sheratan.documents.tenant is 'The tenant that owns the document (from the caller''s token).';
comment on column sheratan.documents.title is 'Human-readable title.';
comment on column sheratan.documents.content is 'The full text of the document.';
comment on column sheratan.documents.source is 'Where the document came from (a URL, a file path, a system name).';
comment on column sheratan.documents.metadata is 'Free-form JSON object describing the document.';
comment on column sheratan.documents.created_at is 'When the document was stored.';
comment on column sheratan.documents.updated_at is 'When the document was last changed.';

--------------------------------------------------------------------------------
create table sheratan.document_chunks (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references sheratan.documents (id) on delete cascade,
  tenant text not null,
  chunk_index integer not null check (chunk_index >= 0),
  content text not null,
  embedding vector(:VECTOR_DIMENSION),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  token_count integer check (token_count >= 0),
  created_at timestamptz not null default now(),
  constraint document_chunks_document_id_chunk_index_key unique (document_id, chunk_index)
);
create index document_chunks_document_id_idx on sheratan.document_chunks (document_id);
-- HNSW builds on an empty table (IVFFlat needs data first; see `npm run index:tune`).
create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw (embedding vector_cosine_ops);
comment on table sheratan.document_chunks is 'A piece of a document with its vector embedding, the unit of similarity search.';
comment on column sheratan.document_chunks.id is 'Unique identifier of the chunk.';
comment on column sheratan.document_chunks.document_id is 'The document this chunk belongs to; deleting the document deletes its chunks.';
comment on column sheratan.document_chunks.tenant is 'The tenant that owns the chunk (always its document''s tenant).';
comment on column sheratan.document_chunks.chunk_index is 'Position of the chunk within its document, unique per document, from 0.';
comment on column sheratan.document_chunks.content is 'The text of the chunk.';
comment on column sheratan.document_chunks.embedding is 'The chunk''s embedding vector, compared by cosine distance.';
comment on column sheratan.document_chunks.metadata is 'Free-form JSON object describing the chunk.';
comment on column sheratan.document_chunks.token_count is 'Number of tokens in the chunk, as counted by the embedding model.';
comment on column sheratan.document_chunks.created_at is 'When the chunk was stored.';

--------------------------------------------------------------------------------
create table sheratan.jobs (
  id bigint primary key generated always as identity,
  tenant text not null,
  job_type text not null check (length(job_type) between 1 and 200),
  payload jsonb not null default '{}'::jsonb,
  status text not null default 'pending' check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
  priority integer not null default 0,
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 3 check (max_attempts >= 1),
  run_at timestamptz not null default now(),
  locked_by text,
  locked_at timestamptz,
  last_error text,
  result jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index jobs_status_idx on sheratan.jobs (status);
create index jobs_job_type_idx on sheratan.jobs (job_type);
create index jobs_created_at_idx on sheratan.jobs (created_at);
create index jobs_priority_idx on sheratan.jobs (priority);
create trigger _100_timestamps before insert or update on sheratan.jobs
  for each row execute procedure sheratan_private.tg__timestamps();
comment on table sheratan.jobs is 'A background job: pending → running → completed | failed.';
comment on column sheratan.jobs.id is 'Unique identifier of the job.';
comment on column sheratan.jobs.tenant is 'The tenant that owns the job.';
comment on column sheratan.jobs.job_type is 'What kind of work this is; workers claim the types they handle.';
comment on column sheratan.jobs.payload is 'Input for the job.';
comment on column sheratan.jobs.status is 'pending, running, completed, failed or cancelled.';
comment on column sheratan.jobs.priority is 'Higher runs first.';
comment on column sheratan.jobs.attempts is 'How many times the job has been claimed.';
comment on column sheratan.jobs.max_attempts is 'After this many failed attempts the job stays failed.';
comment on column sheratan.jobs.run_at is 'The job is not claimed before this time.';
comment on column sheratan.jobs.locked_by is 'The worker running the job.';
comment on column sheratan.jobs.locked_at is 'When the worker claimed the job.';
comment on column sheratan.jobs.last_error is 'The error of the last failed attempt.';
comment on column sheratan.jobs.result is 'Output of the completed job.';
comment on column sheratan.jobs.created_at is 'When the job was enqueued.';
comment on column sheratan.jobs.updated_at is 'When the job last changed.';

--------------------------------------------------------------------------------
create table sheratan.audit_logs (
  id bigint primary key generated always as identity,
  event_type text not null,
  user_id text,
  tenant text,
  resource text not null,
  action text not null,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index audit_logs_created_at_idx on sheratan.audit_logs (created_at);
create index audit_logs_event_type_idx on sheratan.audit_logs (event_type);
create index audit_logs_user_id_idx on sheratan.audit_logs (user_id);
create index audit_logs_resource_idx on sheratan.audit_logs (resource);
comment on table sheratan.audit_logs is 'Append-only security and compliance trail of changes.';
comment on column sheratan.audit_logs.id is 'Unique identifier of the entry.';
comment on column sheratan.audit_logs.event_type is 'Kind of event, e.g. `documents.insert`.';
comment on column sheratan.audit_logs.user_id is 'Who did it (the token''s `sub`).';
comment on column sheratan.audit_logs.tenant is 'The tenant it happened in.';
comment on column sheratan.audit_logs.resource is 'What it happened to, e.g. `documents/<id>`.';
comment on column sheratan.audit_logs.action is 'insert, update or delete.';
comment on column sheratan.audit_logs.details is 'Further details of the event.';
comment on column sheratan.audit_logs.created_at is 'When it happened.';

--------------------------------------------------------------------------------
create table sheratan.search_logs (
  id bigint primary key generated always as identity,
  query_text text,
  k integer not null,
  filters jsonb not null default '{}'::jsonb,
  result_count integer not null,
  top_similarity double precision,
  latency_ms double precision not null,
  user_id text,
  tenant text,
  created_at timestamptz not null default now()
);
create index search_logs_created_at_idx on sheratan.search_logs (created_at);
comment on table sheratan.search_logs is 'One row per similarity search, for analytics.';
comment on column sheratan.search_logs.id is 'Unique identifier of the entry.';
comment on column sheratan.search_logs.query_text is 'The text the caller searched for, when given.';
comment on column sheratan.search_logs.k is 'How many results were asked for.';
comment on column sheratan.search_logs.filters is 'The filters the search used.';
comment on column sheratan.search_logs.result_count is 'How many results were returned.';
comment on column sheratan.search_logs.top_similarity is 'Similarity of the best result.';
comment on column sheratan.search_logs.latency_ms is 'How long the search took, in milliseconds.';
comment on column sheratan.search_logs.user_id is 'Who searched (the token''s `sub`).';
comment on column sheratan.search_logs.tenant is 'The tenant searched.';
comment on column sheratan.search_logs.created_at is 'When the search ran.';
