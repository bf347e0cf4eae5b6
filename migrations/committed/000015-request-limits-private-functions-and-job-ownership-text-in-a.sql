--! Previous: sha1:54b2eca62837849a626464cad3c9804a61ff97a8
--! Hash: sha1:17e36b0c92e1607a352d2d4d835bbeb73eac59ed
--! Message: Request limits, private functions and job ownership, text in and text out, role prefix, reporting views

-- ==========================================================================
-- Request limits in SQL: groupedAggregates bounded by MAX_PAGE_SIZE
-- ==========================================================================
-- groupedAggregates has no `first`: its groups are bounded here, in the same
-- statement (plugins/grouped-aggregates-cap.ts asks for the cap + 1 groups and
-- passes each group's position), so a request asking for more groups than
-- MAX_PAGE_SIZE is refused rather than answered in full or silently cut.
create or replace function sheratan_private.assert_group_count(group_position bigint, cap integer) returns boolean
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
as $$
begin
  if group_position > cap then
    raise exception 'groupedAggregates would return more than % groups (MAX_PAGE_SIZE): narrow it with a condition or fewer groupBy keys', cap
      using errcode = '54000';
  end if;
  return true;
end
$$;
comment on function sheratan_private.assert_group_count(bigint, integer) is
  'Refuses (SQLSTATE 54000) a grouped aggregate whose group at group_position is beyond cap; called by the groupedAggregates plans.';
revoke all on function sheratan_private.assert_group_count(bigint, integer) from public;
grant execute on function sheratan_private.assert_group_count(bigint, integer) to :DATABASE_VISITOR, :DATABASE_READONLY;

-- ==========================================================================
-- Private functions executable only by who needs them; search logs bounded; jobs belong to the subject that claimed them
-- ==========================================================================
-- Issue 25, items 3 and 5 (SQL side) and 7: who may execute what, what a
-- search log row may hold, and jobs that belong to the subject that claimed them.

--------------------------------------------------------------------------------
-- Functions: nobody by default, then each role what its code path needs.
-- A function executes with PUBLIC's EXECUTE unless revoked. Revoking it once
-- for everything in the private schema covers what earlier migrations forgot
-- (tg__timestamps); the default privilege covers every function created
-- later by the role that runs the migrations. (The global default is the one
-- that works: a per-schema default can only add to it, never take away.)
-- test/security/private-functions.test.ts enumerates the functions from the
-- catalog and holds each role's EXECUTE to an allow-list with the reason.
alter default privileges revoke execute on functions from public;
revoke execute on all functions in schema sheratan_private from public;
-- Granted before this but needed by no code path of the role:
-- * anonymous requests read no table, so no policy or default of theirs
--   evaluates the tenant functions;
-- * the user id is read only inside security definer code (the audit
--   triggers, log_search, the job functions), which runs as the owner;
-- * the lock timeout is read only inside claim_job (security definer).
revoke execute on function sheratan_private.current_tenant(), sheratan_private.login_tenant() from :DATABASE_ANONYMOUS;
revoke execute on function sheratan_private.current_user_id() from :DATABASE_VISITOR, :DATABASE_READONLY, :DATABASE_ANONYMOUS;
revoke execute on function sheratan_private.job_lock_timeout() from :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Search logs: written by the searches only, and bounded in the table.
-- The four searches run as the caller (row-level security decides what they
-- read), so the roles that search must be able to execute log_search, and a
-- privilege cannot tell a search's call from a direct one. What can tell them
-- apart is the session's login, which no statement of the session changes:
-- the gateway's sessions (session_user = the authenticator) run only the
-- statements the GraphQL schema plans, where log_search is reachable through
-- the searches alone; a session whose login may insert the row itself (the
-- owner) gains nothing. Any other login (db:reporting-login's, a read-only
-- boundary) is answered its searches and logs nothing, as on a read replica.
-- The values are the search's, and a direct caller's are bounded all the same:
-- the start lies within the current transaction, the text and the filter
-- are cut to what the table holds.
create or replace function sheratan_private.log_search(
  query_text text,
  k integer,
  filters jsonb,
  result_count integer,
  top_similarity double precision,
  started timestamptz
) returns void
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  f jsonb := coalesce(filters, '{}'::jsonb);
  since timestamptz := least(greatest(started, now()), clock_timestamp());
begin
  if session_user <> ':DATABASE_AUTHENTICATOR' and not has_table_privilege(session_user, 'sheratan.search_logs', 'insert') then
    return;
  end if;
  if pg_catalog.txid_current_if_assigned() is null then
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  -- A filter too long to keep (thousands of document ids): its lists become their lengths.
  if length(f::text) > 16384 then
    f := (select coalesce(jsonb_object_agg(e.key, case when jsonb_typeof(e.value) = 'array' then jsonb_build_object('items', jsonb_array_length(e.value))
                                                        when length(e.value::text) > 1024 then jsonb_build_object('characters', length(e.value::text))
                                                        else e.value end), '{}'::jsonb)
            from jsonb_each(f) e) || '{"truncated": true}'::jsonb;
    if length(f::text) > 16384 then
      f := '{"truncated": true}'::jsonb;
    end if;
  end if;
  insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant)
  values (left(query_text, 10000), k, f, result_count, top_similarity,
          least(extract(epoch from clock_timestamp() - since) * 1000, 3600000),
          sheratan_private.current_user_id(), sheratan_private.current_tenant());
exception when read_only_sql_transaction then
  null; -- searching a read replica: analytics are skipped, the search is not
end;
$$;
comment on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamptz) is
  'Logs one search for the caller (search_logs), its latency measured from `started` (within the transaction). Writes only for the gateway''s sessions and logins that may write search_logs themselves: a direct reporting login searches without logging. A search that wrote nothing else commits without waiting for the WAL flush; on a read replica nothing is logged.';

-- The second line: what a row may hold, whoever writes it. NOT VALID first so
-- that rows written before cannot stop the migration; validated at once when
-- they all fit (a no-op once valid), else left for `alter table … validate
-- constraint` after the offending rows are dealt with.
alter table sheratan.search_logs drop constraint if exists search_logs_query_text_length;
alter table sheratan.search_logs drop constraint if exists search_logs_k_positive;
alter table sheratan.search_logs drop constraint if exists search_logs_result_count_not_negative;
alter table sheratan.search_logs drop constraint if exists search_logs_latency_bounded;
alter table sheratan.search_logs drop constraint if exists search_logs_filters_length;
alter table sheratan.search_logs add constraint search_logs_query_text_length
  check (query_text is null or char_length(query_text) <= 10000) not valid;
alter table sheratan.search_logs add constraint search_logs_k_positive check (k >= 1) not valid;
alter table sheratan.search_logs add constraint search_logs_result_count_not_negative check (result_count >= 0) not valid;
alter table sheratan.search_logs add constraint search_logs_latency_bounded
  check (latency_ms >= 0 and latency_ms <= 3600000) not valid;
alter table sheratan.search_logs add constraint search_logs_filters_length check (length(filters::text) <= 16384) not valid;
comment on constraint search_logs_query_text_length on sheratan.search_logs is 'A logged query text is at most 10,000 characters (log_search keeps the first 10,000).';
comment on constraint search_logs_k_positive on sheratan.search_logs is 'A search asks for at least one result.';
comment on constraint search_logs_result_count_not_negative on sheratan.search_logs is 'A search returns zero or more results.';
comment on constraint search_logs_latency_bounded on sheratan.search_logs is
  'A latency is between 0 and one hour (3,600,000 ms, the longest STATEMENT_TIMEOUT_MS the gateway accepts).';
comment on constraint search_logs_filters_length on sheratan.search_logs is 'A logged filter is at most 16,384 characters of JSON (log_search replaces long lists by their lengths).';
do $$
declare
  c text;
begin
  foreach c in array array['search_logs_query_text_length', 'search_logs_k_positive', 'search_logs_result_count_not_negative',
                           'search_logs_latency_bounded', 'search_logs_filters_length'] loop
    begin
      execute format('alter table sheratan.search_logs validate constraint %I', c);
    exception when check_violation then
      raise notice 'search_logs has rows that break %, which stays NOT VALID (new rows are checked)', c;
    end;
  end loop;
end
$$;

--------------------------------------------------------------------------------
-- Jobs belong to the subject that claimed them. The worker id is a label any
-- user of the tenant can read (allJobs.lockedBy); the subject is the token's
-- `sub` (jwt.claims.sub), which only the gateway sets, from a signed token.
-- Claiming needs one; completing and failing accept only the subject that
-- claimed the running job (and, as before, the worker id it claimed with).
alter table sheratan.jobs add column if not exists claimed_by text;
comment on column sheratan.jobs.claimed_by is
  'The subject (the token''s `sub`) that claimed the job last: only it may complete or fail the job while it runs. Written by claimJob only.';
-- Jobs running when this arrives: their claimer, from the claim's audit row
-- (the update that set status running); without one they stay unclaimable by
-- anyone until the lock goes stale (JOB_LOCK_TIMEOUT) and a subject claims them.
update sheratan.jobs j
   set claimed_by = c.user_id
  from (select distinct on (a.resource) a.resource, a.user_id
          from sheratan.audit_logs a
         where a.event_type = 'jobs.update' and a.details ->> 'status' = 'running' and a.details -> 'changed' ? 'status'
           and a.resource in (select 'jobs/' || r.id from sheratan.jobs r where r.status = 'running' and r.claimed_by is null)
         order by a.resource, a.id desc) c
 where c.resource = 'jobs/' || j.id and j.status = 'running' and j.claimed_by is null and c.user_id is not null;

create or replace function sheratan_private.claim_job(worker_id text, job_types text[]) returns sheratan.jobs
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := sheratan_private.current_tenant();
  subject text := sheratan_private.current_user_id();
  job sheratan.jobs;
begin
  if caller_tenant is null then
    raise exception 'claiming a job needs a tenant' using errcode = '42501';
  end if;
  if subject is null then
    raise exception 'claiming a job needs a "sub" claim in the token: a job belongs to the subject that claims it (npm run token -- --sub …)'
      using errcode = '42501';
  end if;
  if worker_id is null or length(worker_id) = 0 then
    raise exception 'workerId must not be empty' using errcode = '22023';
  end if;
  -- Locks older than the timeout belong to workers that died: retry or give up.
  update sheratan.jobs j
     set status = case when j.attempts >= j.max_attempts then 'failed' else 'pending' end,
         last_error = format('worker %s held the job longer than %s without finishing it', j.locked_by, sheratan_private.job_lock_timeout()),
         locked_by = null, locked_at = null
   where j.tenant = caller_tenant and j.status = 'running' and j.locked_at < now() - sheratan_private.job_lock_timeout();

  update sheratan.jobs j
     set status = 'running', locked_by = worker_id, claimed_by = subject, locked_at = now(), attempts = j.attempts + 1
   where j.id = (
       select c.id from sheratan.jobs c
        where c.tenant = caller_tenant and c.status = 'pending' and c.run_at <= now()
          -- "Any type" means the tenant's own job types: the store's embedding jobs go
          -- only to a worker that asks for embed_document by name (src/embedding/worker.ts).
          and (case when job_types is null then c.job_type <> 'embed_document' else c.job_type = any (job_types) end)
        order by c.priority desc, c.run_at, c.id
        limit 1
        for update skip locked)
  returning * into job;
  return job;
end;
$$;
comment on function sheratan_private.claim_job(text, text[]) is
  'claimJob''s work (security definer: API roles have no UPDATE on jobs): returns stale locks to pending, then claims the best due job for `worker_id` and the token''s subject.';

create or replace function sheratan_private.finish_job(job_id bigint, worker_id text, succeeded boolean, result jsonb, error text) returns sheratan.jobs
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  subject text := sheratan_private.current_user_id();
  job sheratan.jobs;
begin
  if subject is null then
    raise exception 'completing or failing a job needs a "sub" claim in the token: only the subject that claimed a job may finish it'
      using errcode = '42501';
  end if;
  select * into job from sheratan.jobs j
   where j.id = finish_job.job_id and j.tenant = sheratan_private.current_tenant()
   for update;
  if job.id is null then
    raise exception 'no job % in this tenant', job_id using errcode = '22023';
  end if;
  if job.status <> 'running' then
    raise exception 'job % is not running for worker % (it is %)', job_id, worker_id, job.status using errcode = '55000';
  end if;
  if job.claimed_by is distinct from subject then
    raise exception 'job % was claimed by another subject: only the subject that claimed a job (its token''s "sub") may complete or fail it', job_id
      using errcode = '42501';
  end if;
  if job.locked_by is distinct from worker_id then
    raise exception 'job % is not running for worker % (it is held by worker %)', job_id, worker_id, job.locked_by using errcode = '55000';
  end if;
  if succeeded then
    update sheratan.jobs j set status = 'completed', result = finish_job.result, last_error = null, locked_by = null, locked_at = null
     where j.id = job.id returning * into job;
  elsif job.attempts < job.max_attempts then
    -- Exponential backoff: 2, 4, 8 … seconds after each failed attempt (capped at an hour).
    update sheratan.jobs j set status = 'pending', last_error = error, locked_by = null, locked_at = null,
           run_at = now() + least(interval '1 hour', interval '1 second' * power(2, job.attempts))
     where j.id = job.id returning * into job;
  else
    update sheratan.jobs j set status = 'failed', last_error = error, locked_by = null, locked_at = null
     where j.id = job.id returning * into job;
  end if;
  return job;
end;
$$;
comment on function sheratan_private.finish_job(bigint, text, boolean, jsonb, text) is
  'completeJob''s and failJob''s work (security definer): only for a running job of the caller''s tenant claimed by the caller''s subject with `worker_id`.';

comment on function sheratan.claim_job(text, text[]) is
  E'@resultFieldName job\nClaims the best due pending job of these types (highest priority, then oldest) for `workerId` and the token''s subject (`sub`, required); null when there is none. Concurrent claimers never get the same job.';
comment on function sheratan.complete_job(bigint, text, jsonb) is
  E'@resultFieldName job\nMarks a running job completed with its `result`. Only the subject (the token''s `sub`) that claimed the job, with the `workerId` it claimed it for, may do this.';
comment on function sheratan.fail_job(bigint, text, text) is
  E'@resultFieldName job\nRecords a failed attempt: the job is retried later (exponential backoff) while attempts remain, else it stays failed. Only the subject that claimed the job, with its `workerId`, may do this.';

-- ==========================================================================
-- Text in, text out: embedding status, chunk offsets and models, re-embedding jobs, the vectorizer
-- ==========================================================================
-- Issue 26, text in, text out: the store keeps every chunk's vector in step
-- with its text. A document's status says where its embedding stands
-- (pending, embedded, failed, with the last error); a change of text marks it
-- pending and queues an `embed_document` job (the job queue of 000004) that
-- the embedding workers (src/embedding/worker.ts) run per tenant, as the API
-- role under row-level security. Nothing is queued unless a gateway or worker
-- with an embedding provider declared itself (sheratan_private.vectorizer):
-- with EMBEDDING_PROVIDER=none clients bring vectors as before.

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                  where n.nspname = 'sheratan' and t.typname = 'embedding_status') then
    create type sheratan.embedding_status as enum ('pending', 'embedded', 'failed');
  end if;
end
$$;
comment on type sheratan.embedding_status is
  'Where a document''s embedding stands: pending (text waiting to be chunked or embedded), embedded (every chunk has its vector) or failed (after the last attempt; see embeddingError).';

alter table sheratan.documents add column if not exists embedding_status sheratan.embedding_status not null default 'embedded';
alter table sheratan.documents add column if not exists embedding_error text;
alter table sheratan.documents add column if not exists chunks_stale boolean not null default false;
comment on column sheratan.documents.embedding_status is
  'PENDING while its text waits to be chunked or embedded, EMBEDDED when every chunk has its vector, FAILED when the last attempt failed (embeddingError says why). Maintained by the store.';
comment on column sheratan.documents.embedding_error is 'The last embedding error of this document (kept while it is retried; cleared when it is embedded).';
comment on column sheratan.documents.chunks_stale is
  E'@behavior -*\nTrue when the document''s content changed since its chunks were made: the embedding job makes them again.';

alter table sheratan.document_chunks add column if not exists start_offset integer;
alter table sheratan.document_chunks add column if not exists end_offset integer;
alter table sheratan.document_chunks add column if not exists embedding_model text;
alter table sheratan.document_chunks drop constraint if exists document_chunks_offsets_check;
alter table sheratan.document_chunks add constraint document_chunks_offsets_check
  check (start_offset >= 0 and end_offset >= start_offset);
comment on column sheratan.document_chunks.start_offset is
  'Where the chunk''s text starts in its document''s content (UTF-16 code units, as JavaScript strings index), when the store chunked it or found it there; null otherwise.';
comment on column sheratan.document_chunks.end_offset is
  'Where the chunk''s text ends (exclusive) in its document''s content, in UTF-16 code units; content = document.content.slice(startOffset, endOffset).';
comment on column sheratan.document_chunks.embedding_model is
  'The model that embedded the chunk (e.g. local:use-lite-512); null when the client brought the vector, or it has none yet.';

-- Embedding jobs are looked up by document (one pending or running job per document).
create index if not exists jobs_embed_document_idx on sheratan.jobs ((payload ->> 'documentId'))
  where job_type = 'embed_document' and status in ('pending', 'running');
-- Chunks waiting for a vector, per document.
create index if not exists document_chunks_unembedded_idx on sheratan.document_chunks (document_id, chunk_index) where embedding is null;

-- The embedding provider in use, declared by the gateway or worker that has
-- one (set_vectorizer at start). Not tenant data: one row, or none.
create table if not exists sheratan_private.vectorizer (
  singleton boolean primary key default true check (singleton),
  model text not null,
  dimension integer not null check (dimension between 1 and 16000),
  max_attempts integer not null default 5 check (max_attempts between 1 and 100),
  updated_at timestamptz not null default now()
);
comment on table sheratan_private.vectorizer is
  'The embedding provider the store''s workers use (model, dimension, attempts per job); no row: clients bring vectors and nothing is queued.';
revoke all on sheratan_private.vectorizer from public;

create or replace function sheratan_private.set_vectorizer(model text, dimension integer, max_attempts integer) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if model is null then
    delete from sheratan_private.vectorizer;
    return;
  end if;
  insert into sheratan_private.vectorizer (singleton, model, dimension, max_attempts, updated_at)
  values (true, model, dimension, coalesce(max_attempts, 5), now())
  on conflict (singleton) do update
    set model = excluded.model, dimension = excluded.dimension, max_attempts = excluded.max_attempts, updated_at = now()
  where (vectorizer.model, vectorizer.dimension, vectorizer.max_attempts) is distinct from (excluded.model, excluded.dimension, excluded.max_attempts);
end;
$$;
comment on function sheratan_private.set_vectorizer(text, integer, integer) is
  'Declares the embedding provider (model, dimension, attempts per job) of the gateway or worker starting; null model: none, clients bring vectors.';

create or replace function sheratan_private.vectorizer_max_attempts() returns integer
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$ select v.max_attempts from sheratan_private.vectorizer v $$;
comment on function sheratan_private.vectorizer_max_attempts() is
  'Attempts per embedding job, or null when no embedding provider is declared (nothing is queued then).';

-- Queues the embedding of one document (one pending or running job per
-- document is enough: a running job looks for more work before it ends), and
-- wakes the workers. The tenant is the document's, so that a bulk load as the
-- owner (COPY) queues its work in the right tenant.
create or replace function sheratan_private.enqueue_embedding(doc_id uuid, doc_tenant text, payload jsonb default '{}') returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  attempts integer := sheratan_private.vectorizer_max_attempts();
begin
  if attempts is null or doc_id is null or doc_tenant is null then
    return;
  end if;
  if exists (select 1 from sheratan.jobs j
              where j.job_type = 'embed_document' and j.status in ('pending', 'running')
                and (j.payload ->> 'documentId') = doc_id::text and j.tenant = doc_tenant
                and coalesce(j.payload -> 'reembed', 'false') = coalesce(enqueue_embedding.payload -> 'reembed', 'false')) then
    return;
  end if;
  insert into sheratan.jobs (tenant, job_type, payload, max_attempts)
  values (doc_tenant, 'embed_document', coalesce(enqueue_embedding.payload, '{}'::jsonb) || jsonb_build_object('documentId', doc_id), attempts);
  perform pg_notify('sheratan_embedding', doc_tenant);
end;
$$;
comment on function sheratan_private.enqueue_embedding(uuid, text, jsonb) is
  'Queues an embed_document job for a document in its tenant unless one is already pending or running, and notifies sheratan_embedding; a no-op without an embedding provider.';

-- A document's content changed: its chunks are made again and embedded.
create or replace function sheratan_private.tg__document_content_changed() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.content is distinct from old.content and sheratan_private.vectorizer_max_attempts() is not null then
    new.embedding_status := 'pending';
    new.embedding_error := null;
    new.chunks_stale := true;
    perform sheratan_private.enqueue_embedding(new.id, new.tenant);
  end if;
  return new;
end;
$$;
comment on function sheratan_private.tg__document_content_changed() is
  'Trigger: a change of content marks the document pending, its chunks stale, and queues its embedding.';

-- A document stored with text and no chunks (ingestDocument above
-- EMBED_SYNC_MAX_CHARS, createDocument, COPY): checked at commit, when
-- whatever stored it had the chance to add its chunks in the same transaction.
create or replace function sheratan_private.tg__document_needs_chunks() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if sheratan_private.vectorizer_max_attempts() is null or btrim(new.content) = '' then
    return null;
  end if;
  if exists (select 1 from sheratan.document_chunks c where c.document_id = new.id) then
    return null;
  end if;
  update sheratan.documents d set embedding_status = 'pending', embedding_error = null, chunks_stale = true
   where d.id = new.id;
  if found then
    perform sheratan_private.enqueue_embedding(new.id, new.tenant);
  end if;
  return null;
end;
$$;
comment on function sheratan_private.tg__document_needs_chunks() is
  'Deferred trigger: at commit, a new document with text and no chunks becomes pending and its chunking and embedding is queued.';

-- A chunk's text changed and its vector did not come with it: the vector is dropped and made again.
create or replace function sheratan_private.tg__chunk_content_changed() returns trigger
  language plpgsql security definer
  -- public: pgvector's = (IS DISTINCT FROM on vectors).
  set search_path = pg_catalog, public, pg_temp
as $$
begin
  if new.content is distinct from old.content and new.embedding is not distinct from old.embedding
     and sheratan_private.vectorizer_max_attempts() is not null then
    new.embedding := null;
    new.embedding_model := null;
  end if;
  return new;
end;
$$;
comment on function sheratan_private.tg__chunk_content_changed() is
  'Trigger: a chunk whose text changes without a new vector loses its stale vector (the embedding job makes it again).';

-- Chunks stored or changed without a vector: their documents become pending and their embedding is queued.
create or replace function sheratan_private.tg__chunks_need_vectors() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  doc record;
begin
  if sheratan_private.vectorizer_max_attempts() is null then
    return null;
  end if;
  for doc in
    select d.id, d.tenant from sheratan.documents d
     where d.id in (select c.document_id from changed_chunks c where c.embedding is null)
  loop
    update sheratan.documents d set embedding_status = 'pending', embedding_error = null
     where d.id = doc.id and d.embedding_status <> 'pending';
    perform sheratan_private.enqueue_embedding(doc.id, doc.tenant);
  end loop;
  return null;
end;
$$;
comment on function sheratan_private.tg__chunks_need_vectors() is
  'Trigger: documents with chunks stored or changed without a vector become pending and their embedding is queued.';

revoke all on function sheratan_private.set_vectorizer(text, integer, integer) from public;
revoke all on function sheratan_private.vectorizer_max_attempts() from public;
revoke all on function sheratan_private.enqueue_embedding(uuid, text, jsonb) from public;
revoke all on function sheratan_private.tg__document_content_changed() from public;
revoke all on function sheratan_private.tg__document_needs_chunks() from public;
revoke all on function sheratan_private.tg__chunk_content_changed() from public;
revoke all on function sheratan_private.tg__chunks_need_vectors() from public;

drop trigger if exists _200_content_changed on sheratan.documents;
create trigger _200_content_changed before update of content on sheratan.documents
  for each row execute procedure sheratan_private.tg__document_content_changed();
drop trigger if exists _210_needs_chunks on sheratan.documents;
create constraint trigger _210_needs_chunks after insert on sheratan.documents
  deferrable initially deferred
  for each row execute procedure sheratan_private.tg__document_needs_chunks();
drop trigger if exists _200_content_changed on sheratan.document_chunks;
create trigger _200_content_changed before update of content on sheratan.document_chunks
  for each row execute procedure sheratan_private.tg__chunk_content_changed();
drop trigger if exists _210_need_vectors_insert on sheratan.document_chunks;
create trigger _210_need_vectors_insert after insert on sheratan.document_chunks
  referencing new table as changed_chunks for each statement execute procedure sheratan_private.tg__chunks_need_vectors();
drop trigger if exists _210_need_vectors_update on sheratan.document_chunks;
create trigger _210_need_vectors_update after update on sheratan.document_chunks
  referencing new table as changed_chunks for each statement execute procedure sheratan_private.tg__chunks_need_vectors();

--------------------------------------------------------------------------------
-- ingestDocument through the gateway (plugins/text-ingest.ts): the plugin has
-- already chunked and, for small documents, embedded the text; this stores
-- the document and its prepared chunks in one statement. Chunks without a
-- vector leave the document pending (the triggers queue the work).
drop function if exists sheratan_private.insert_prepared_chunks(uuid, jsonb);
create function sheratan_private.insert_prepared_chunks(doc_id uuid, chunks jsonb) returns integer
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  doc_tenant text := (select d.tenant from sheratan.documents d where d.id = doc_id and d.tenant = sheratan_private.current_tenant());
  stored integer;
begin
  if doc_tenant is null then
    raise exception 'no document % in this tenant', doc_id using errcode = '22023';
  end if;
  if jsonb_typeof(chunks) is distinct from 'array' then
    raise exception 'chunks must be a JSON array' using errcode = '22023';
  end if;
  insert into sheratan.document_chunks
    (document_id, tenant, chunk_index, content, embedding, metadata, token_count, start_offset, end_offset, embedding_model)
  select doc_id, doc_tenant,
         coalesce((c.value ->> 'chunkIndex')::integer, (c.i - 1)::integer),
         c.value ->> 'content',
         sheratan_private.assert_embedding((c.value ->> 'embedding')::vector),
         coalesce(c.value -> 'metadata', '{}'::jsonb),
         (c.value ->> 'tokenCount')::integer,
         (c.value ->> 'start')::integer,
         (c.value ->> 'end')::integer,
         case when c.value ? 'embedding' then c.value ->> 'model' end
    from jsonb_array_elements(chunks) with ordinality as c(value, i);
  get diagnostics stored = row_count;
  return stored;
end;
$$;
comment on function sheratan_private.insert_prepared_chunks(uuid, jsonb) is
  'Stores the chunks ingestDocument prepared (content, embedding, chunkIndex, metadata, tokenCount, start, end, model) for a document of the caller''s tenant.';

drop function if exists sheratan_private.ingest_prepared(text, text, text, jsonb, jsonb);
create function sheratan_private.ingest_prepared(title text, content text, source text, metadata jsonb, chunks jsonb)
  returns sheratan.documents
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  doc sheratan.documents;
begin
  insert into sheratan.documents (title, content, source, metadata)
  values (title, coalesce(content, ''), source, coalesce(metadata, '{}'::jsonb))
  returning * into doc;
  perform sheratan_private.insert_prepared_chunks(doc.id, coalesce(chunks, '[]'::jsonb));
  -- The row as it is now (the chunk trigger may have marked it pending).
  select * into doc from sheratan.documents d where d.id = doc.id;
  if btrim(doc.content) <> '' and jsonb_array_length(coalesce(chunks, '[]'::jsonb)) = 0
     and exists (select 1 from sheratan_private.vectorizer_model()) then
    -- Chunked and embedded by a worker (the deferred trigger queues it at commit).
    doc.embedding_status := 'pending';
  end if;
  return doc;
end;
$$;
comment on function sheratan_private.ingest_prepared(text, text, text, jsonb, jsonb) is
  'ingestDocument as the gateway runs it: the document and its prepared chunks in one transaction, as the caller (row-level security applies).';

--------------------------------------------------------------------------------
-- The embedding workers' steps, as the API role within one tenant.

-- The chunks of a document, made again from its content by the worker's
-- chunker (the old ones and their vectors go), when its content changed.
drop function if exists sheratan_private.rechunk_document(uuid, jsonb, text);
create function sheratan_private.rechunk_document(doc_id uuid, chunks jsonb, chunked_content text) returns integer
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  doc sheratan.documents;
  stored integer;
begin
  select * into doc from sheratan.documents d
   where d.id = doc_id and d.tenant = sheratan_private.current_tenant() for update;
  if doc.id is null or doc.content is distinct from chunked_content then
    return -1; -- gone, or changed again since it was read: its next job chunks it
  end if;
  delete from sheratan.document_chunks c where c.document_id = doc.id;
  insert into sheratan.document_chunks (document_id, tenant, chunk_index, content, start_offset, end_offset)
  select doc.id, doc.tenant, (c.value ->> 'index')::integer, c.value ->> 'content', (c.value ->> 'start')::integer, (c.value ->> 'end')::integer
    from jsonb_array_elements(chunks) c;
  get diagnostics stored = row_count;
  update sheratan.documents d set chunks_stale = false, embedding_status = 'pending' where d.id = doc.id;
  return stored;
end;
$$;
comment on function sheratan_private.rechunk_document(uuid, jsonb, text) is
  'Embedding worker: replaces a document''s chunks by the ones made from `chunked_content` (index, content, start, end), if that is still its content; returns how many, or -1 when it changed or is gone.';

-- Stores vectors for chunks whose text is still the text that was embedded.
drop function if exists sheratan_private.store_chunk_vectors(uuid[], text[], text[], text);
create function sheratan_private.store_chunk_vectors(ids uuid[], texts text[], vectors text[], model text) returns integer
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  stored integer;
begin
  -- Only the declared model's vectors are recorded as made by the store.
  if model is distinct from (select v.model from sheratan_private.vectorizer v) then
    raise exception 'the store embeds with %, not %', (select v.model from sheratan_private.vectorizer v), model using errcode = '22023';
  end if;
  update sheratan.document_chunks c
     set embedding = sheratan_private.assert_embedding(u.v::vector), embedding_model = model
    from unnest(ids, texts, vectors) as u(id, t, v)
   where c.id = u.id and c.content = u.t and c.tenant = sheratan_private.current_tenant();
  get diagnostics stored = row_count;
  return stored;
end;
$$;
comment on function sheratan_private.store_chunk_vectors(uuid[], text[], text[], text) is
  'Embedding worker: stores each chunk''s vector (by `model`) if its text is still the one embedded; returns how many were stored.';

-- Ends one attempt of an embed_document job. Success with work left (more
-- chunks, or content changed meanwhile) puts the job back at once with its
-- attempts reset (each pass made progress); success with nothing left
-- completes it and the document is embedded. A failure is retried after
-- `retry_ms` while attempts remain (and not `give_up`: a failure waiting
-- cannot mend); then the job and the document are failed with the error.
drop function if exists sheratan_private.finish_embedding_job(bigint, text, text, integer, boolean);
create function sheratan_private.finish_embedding_job(job_id bigint, worker_id text, error text, retry_ms integer, give_up boolean default false)
  returns text
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  job sheratan.jobs;
  doc_id uuid;
  reembed boolean;
  model text := (select v.model from sheratan_private.vectorizer v);
  left_over boolean;
begin
  select * into job from sheratan.jobs j
   where j.id = finish_embedding_job.job_id and j.tenant = sheratan_private.current_tenant() and j.job_type = 'embed_document'
   for update;
  -- Only the subject and worker that claimed it (jobs.claimed_by, section sql-hardening) end an attempt.
  if job.id is null or job.status <> 'running' or job.locked_by is distinct from worker_id
     or job.claimed_by is distinct from sheratan_private.current_user_id() then
    return 'lost';
  end if;
  doc_id := (job.payload ->> 'documentId')::uuid;
  reembed := coalesce((job.payload ->> 'reembed')::boolean, false);
  if error is null then
    select d.chunks_stale or exists (
             select 1 from sheratan.document_chunks c
              where c.document_id = d.id
                and (c.embedding is null or (reembed and c.embedding_model is distinct from model)))
      into left_over
      from sheratan.documents d where d.id = doc_id;
    if coalesce(left_over, false) then
      update sheratan.jobs j set status = 'pending', attempts = 0, locked_by = null, locked_at = null, run_at = now(), last_error = null
       where j.id = job.id;
      return 'more';
    end if;
    update sheratan.jobs j set status = 'completed', locked_by = null, locked_at = null, last_error = null,
           result = jsonb_build_object('documentId', doc_id)
     where j.id = job.id;
    update sheratan.documents d set embedding_status = 'embedded', embedding_error = null
     where d.id = doc_id and (d.embedding_status <> 'embedded' or d.embedding_error is not null);
    return 'done';
  end if;
  if job.attempts < job.max_attempts and not coalesce(give_up, false) then
    update sheratan.jobs j set status = 'pending', last_error = error, locked_by = null, locked_at = null,
           run_at = now() + make_interval(secs => greatest(coalesce(retry_ms, 1000), 0) / 1000.0)
     where j.id = job.id;
    update sheratan.documents d set embedding_error = error where d.id = doc_id;
    return 'retry';
  end if;
  update sheratan.jobs j set status = 'failed', last_error = error, locked_by = null, locked_at = null where j.id = job.id;
  update sheratan.documents d set embedding_status = 'failed', embedding_error = error where d.id = doc_id;
  return 'failed';
end;
$$;
comment on function sheratan_private.finish_embedding_job(bigint, text, text, integer, boolean) is
  'Embedding worker: ends an attempt of its embed_document job (error null: success); returns more, done, retry, failed or lost.';

-- Which tenants have embedding work due, for the workers' fair share: the
-- gateway's login may read these counts, and nothing else, across tenants.
-- The tenants are found by skipping through the index from one to the next
-- (a loose index scan: about one probe per tenant, however many jobs wait),
-- and each one's count stops at 1,000.
create index if not exists jobs_embed_due_idx on sheratan.jobs (tenant, run_at)
  where job_type = 'embed_document' and status = 'pending';
drop function if exists sheratan_private.embedding_work();
create function sheratan_private.embedding_work() returns table (tenant text, due bigint)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  with recursive tenants as (
    (select j.tenant from sheratan.jobs j
      where j.job_type = 'embed_document' and j.status = 'pending'
      order by j.tenant limit 1)
    union all
    select (select j.tenant from sheratan.jobs j
             where j.job_type = 'embed_document' and j.status = 'pending' and j.tenant > t.tenant
             order by j.tenant limit 1)
      from tenants t where t.tenant is not null
  ), due as (
    select t.tenant,
           (select count(*) from (select 1 from sheratan.jobs j
                                   where j.job_type = 'embed_document' and j.status = 'pending'
                                     and j.tenant = t.tenant and j.run_at <= now() limit 1000) x) as due
      from tenants t where t.tenant is not null
    union all
    -- Jobs of a worker that died (held past JOB_LOCK_TIMEOUT): claiming them in their tenant frees them.
    select j.tenant, count(*) from sheratan.jobs j
     where j.job_type = 'embed_document' and j.status = 'running' and j.locked_at < now() - sheratan_private.job_lock_timeout()
     group by j.tenant
  )
  select d.tenant, sum(d.due)::bigint from due d group by d.tenant having sum(d.due) > 0
$$;
comment on function sheratan_private.embedding_work() is
  'Tenants with embed_document jobs due (or abandoned by a worker that died), and how many: what the embedding workers share out.';

--------------------------------------------------------------------------------
-- Query.vectorizerStatus: the caller's tenant's progress.
drop function if exists sheratan.vectorizer_status();
drop type if exists sheratan.vectorizer_status;
create type sheratan.vectorizer_status as (
  model text,
  dimension integer,
  pending_documents bigint,
  embedded_documents bigint,
  failed_documents bigint,
  pending_chunks bigint,
  embedded_chunks bigint
);
comment on type sheratan.vectorizer_status is 'How far the store is with embedding your tenant''s text.';
comment on column sheratan.vectorizer_status.model is 'The embedding model the store uses (null: clients bring vectors).';
comment on column sheratan.vectorizer_status.dimension is 'Its dimension.';
comment on column sheratan.vectorizer_status.pending_documents is 'Documents waiting to be chunked or embedded.';
comment on column sheratan.vectorizer_status.embedded_documents is 'Documents whose chunks all have vectors.';
comment on column sheratan.vectorizer_status.failed_documents is 'Documents whose embedding failed (see Document.embeddingError).';
comment on column sheratan.vectorizer_status.pending_chunks is 'Chunks without a vector yet.';
comment on column sheratan.vectorizer_status.embedded_chunks is 'Chunks with a vector.';

create or replace function sheratan_private.vectorizer_model() returns table (model text, dimension integer)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$ select v.model, v.dimension from sheratan_private.vectorizer v $$;
comment on function sheratan_private.vectorizer_model() is 'The declared embedding model and its dimension (no row: none).';

create function sheratan.vectorizer_status() returns sheratan.vectorizer_status
  language sql stable
  set search_path = pg_catalog, public, pg_temp
as $$
  select m.model, m.dimension, d.pending, d.embedded, d.failed, c.pending, c.embedded
    from (select count(*) filter (where x.embedding_status = 'pending') as pending,
                 count(*) filter (where x.embedding_status = 'embedded') as embedded,
                 count(*) filter (where x.embedding_status = 'failed') as failed
            from sheratan.documents x) d,
         (select count(*) filter (where y.embedding is null) as pending,
                 count(*) filter (where y.embedding is not null) as embedded
            from sheratan.document_chunks y) c
    left join sheratan_private.vectorizer_model() m on true
$$;
comment on function sheratan.vectorizer_status() is
  'Counts of your tenant''s documents by embedding status and of its chunks with and without a vector, and the model in use.';

revoke all on function sheratan_private.insert_prepared_chunks(uuid, jsonb) from public;
revoke all on function sheratan_private.ingest_prepared(text, text, text, jsonb, jsonb) from public;
revoke all on function sheratan_private.rechunk_document(uuid, jsonb, text) from public;
revoke all on function sheratan_private.store_chunk_vectors(uuid[], text[], text[], text) from public;
revoke all on function sheratan_private.finish_embedding_job(bigint, text, text, integer, boolean) from public;
revoke all on function sheratan_private.embedding_work() from public;
revoke all on function sheratan_private.vectorizer_model() from public;
revoke all on function sheratan.vectorizer_status() from public;
grant execute on function
  sheratan_private.insert_prepared_chunks(uuid, jsonb),
  sheratan_private.ingest_prepared(text, text, text, jsonb, jsonb),
  sheratan_private.rechunk_document(uuid, jsonb, text),
  sheratan_private.store_chunk_vectors(uuid[], text[], text[], text),
  sheratan_private.finish_embedding_job(bigint, text, text, integer, boolean)
  to :DATABASE_VISITOR;
grant execute on function sheratan_private.vectorizer_model(), sheratan.vectorizer_status() to :DATABASE_VISITOR, :DATABASE_READONLY;
grant execute on function sheratan_private.set_vectorizer(text, integer, integer), sheratan_private.embedding_work() to :DATABASE_AUTHENTICATOR;

-- ==========================================================================
-- Several stores per cluster: current_tenant() names the authenticator by placeholder
-- ==========================================================================
-- Several stores on one cluster (DATABASE_ROLE_PREFIX): migration 000009 wrote
-- the gateway's login into current_tenant() literally; the store's own
-- authenticator takes the claim without a lookup, by placeholder. The body is
-- otherwise 000009's; `create or replace` keeps the grants.
create or replace function sheratan_private.current_tenant() returns text
  language sql stable parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select case when session_user = ':DATABASE_AUTHENTICATOR'
              then nullif(current_setting('jwt.claims.tenant', true), '')
              else sheratan_private.login_tenant() end
$$;
comment on function sheratan_private.current_tenant() is
  'The tenant of the current request (the token''s `tenant` claim), or, for a direct login bound with db:reporting-login, its bound tenant; null when there is none.';

-- ==========================================================================
-- The reporting views (sheratan_reporting)
-- ==========================================================================
-- Issue 29: the reporting surface. Reporting tools (SQL through their own
-- drivers as a db:reporting-login, or /reporting/graphql as sheratan_readonly)
-- read these views instead of writing the same analytics from the raw tables
-- in every tool. Every view is security_invoker: the tables' row-level
-- security applies to the caller (not to the views' owner, who bypasses it),
-- so each login and token sees its own tenant's figures only. Days and hours
-- are cut in the session's TimeZone (a driver's own zone), as `::date` and
-- date_trunc do. Recreated on every run (a view's columns cannot change
-- under `create or replace`), after the sections that add the columns read.
create schema if not exists sheratan_reporting;
comment on schema sheratan_reporting is
  'Read-only analytics over the store for reporting tools: views scoped to the caller''s tenant by the tables'' row-level security; exposed on /reporting/graphql beside the sheratan schema.';
revoke all on schema sheratan_reporting from public;
grant usage on schema sheratan_reporting to :DATABASE_READONLY;

drop view if exists sheratan_reporting.search_daily, sheratan_reporting.search_hourly, sheratan_reporting.search_events,
  sheratan_reporting.ingest_daily, sheratan_reporting.embedding_coverage, sheratan_reporting.job_daily,
  sheratan_reporting.job_queue, sheratan_reporting.ann_index_usage;

-- One row per logged search, with what the log keeps in its filter made into columns.
create view sheratan_reporting.search_events with (security_invoker = true) as
  select l.id,
         l.tenant,
         l.created_at,
         l.created_at::date as day,
         date_trunc('hour', l.created_at) as hour,
         coalesce(l.filters ->> 'mode', case when l.filters ? 'diversity' then 'mmr' else 'vector' end) as mode,
         case when jsonb_typeof(l.filters -> 'sources') = 'array'
              then (select string_agg(s, ',' order by s) from jsonb_array_elements_text(l.filters -> 'sources') s) end as source_filter,
         l.query_text is not null as by_text,
         l.k,
         l.result_count,
         l.result_count = 0 as zero_result,
         l.top_similarity,
         l.latency_ms
    from sheratan.search_logs l;
comment on view sheratan_reporting.search_events is
  'One row per search of the caller''s tenant (search_logs), its mode and source filter made columns: the rows search_daily and search_hourly aggregate.';
comment on column sheratan_reporting.search_events.id is 'The search_logs entry.';
comment on column sheratan_reporting.search_events.tenant is 'The tenant searched (always the caller''s).';
comment on column sheratan_reporting.search_events.created_at is 'When the search ran.';
comment on column sheratan_reporting.search_events.day is 'The day it ran, in the session''s time zone.';
comment on column sheratan_reporting.search_events.hour is 'The hour it ran, in the session''s time zone.';
comment on column sheratan_reporting.search_events.mode is 'vector, mmr (a diversified vector search), hybrid, similarChunks or similarDocuments.';
comment on column sheratan_reporting.search_events.source_filter is 'The sources the search was limited to, sorted and joined by commas; null when it searched every source.';
comment on column sheratan_reporting.search_events.by_text is 'Whether the search was given text (query or queryText).';
comment on column sheratan_reporting.search_events.k is 'How many results were asked for.';
comment on column sheratan_reporting.search_events.result_count is 'How many results came back.';
comment on column sheratan_reporting.search_events.zero_result is 'Whether it found nothing.';
comment on column sheratan_reporting.search_events.top_similarity is 'The best result''s similarity (null for hybrid and similar searches, or when nothing was found).';
comment on column sheratan_reporting.search_events.latency_ms is 'How long the search took, in milliseconds.';

create view sheratan_reporting.search_daily with (security_invoker = true) as
  select e.tenant, e.day, e.mode, e.source_filter,
         count(*) as searches,
         count(*) filter (where e.zero_result) as zero_result_searches,
         (count(*) filter (where e.zero_result))::double precision / count(*) as zero_result_rate,
         avg(e.latency_ms) as mean_latency_ms,
         percentile_cont(0.5) within group (order by e.latency_ms) as p50_latency_ms,
         percentile_cont(0.95) within group (order by e.latency_ms) as p95_latency_ms,
         percentile_cont(0.99) within group (order by e.latency_ms) as p99_latency_ms,
         max(e.latency_ms) as max_latency_ms,
         avg(e.top_similarity) as mean_top_similarity,
         avg(e.result_count) as mean_result_count
    from sheratan_reporting.search_events e
   group by e.tenant, e.day, e.mode, e.source_filter;
comment on view sheratan_reporting.search_daily is
  'Search analytics per day (the session''s time zone), mode and source filter: how many, how fast (mean, p50/p95/p99, max latency), how often nothing was found, how similar the best results were.';

create view sheratan_reporting.search_hourly with (security_invoker = true) as
  select e.tenant, e.hour, e.mode, e.source_filter,
         count(*) as searches,
         count(*) filter (where e.zero_result) as zero_result_searches,
         (count(*) filter (where e.zero_result))::double precision / count(*) as zero_result_rate,
         avg(e.latency_ms) as mean_latency_ms,
         percentile_cont(0.5) within group (order by e.latency_ms) as p50_latency_ms,
         percentile_cont(0.95) within group (order by e.latency_ms) as p95_latency_ms,
         percentile_cont(0.99) within group (order by e.latency_ms) as p99_latency_ms,
         max(e.latency_ms) as max_latency_ms,
         avg(e.top_similarity) as mean_top_similarity,
         avg(e.result_count) as mean_result_count
    from sheratan_reporting.search_events e
   group by e.tenant, e.hour, e.mode, e.source_filter;
comment on view sheratan_reporting.search_hourly is
  'Search analytics per hour (the session''s time zone), mode and source filter: the figures of search_daily, hour by hour.';

do $$
declare
  v text;
begin
  foreach v in array array['search_daily', 'search_hourly'] loop
    execute format($c$
      comment on column sheratan_reporting.%1$I.tenant is 'The tenant (always the caller''s).';
      comment on column sheratan_reporting.%1$I.mode is 'vector, mmr, hybrid, similarChunks or similarDocuments.';
      comment on column sheratan_reporting.%1$I.source_filter is 'The sources the searches were limited to (comma-joined); null: every source.';
      comment on column sheratan_reporting.%1$I.searches is 'How many searches.';
      comment on column sheratan_reporting.%1$I.zero_result_searches is 'How many found nothing.';
      comment on column sheratan_reporting.%1$I.zero_result_rate is 'The share that found nothing (0 to 1).';
      comment on column sheratan_reporting.%1$I.mean_latency_ms is 'Mean latency, milliseconds.';
      comment on column sheratan_reporting.%1$I.p50_latency_ms is 'Median latency, milliseconds (interpolated, percentile_cont).';
      comment on column sheratan_reporting.%1$I.p95_latency_ms is '95th percentile latency, milliseconds (interpolated).';
      comment on column sheratan_reporting.%1$I.p99_latency_ms is '99th percentile latency, milliseconds (interpolated).';
      comment on column sheratan_reporting.%1$I.max_latency_ms is 'Slowest search, milliseconds.';
      comment on column sheratan_reporting.%1$I.mean_top_similarity is 'Mean similarity of the best result, over the searches that report one.';
      comment on column sheratan_reporting.%1$I.mean_result_count is 'Mean number of results returned.';
    $c$, v);
  end loop;
end
$$;
comment on column sheratan_reporting.search_daily.day is 'The day, in the session''s time zone.';
comment on column sheratan_reporting.search_hourly.hour is 'The start of the hour, in the session''s time zone.';

-- Documents and chunks by the day they were stored (those still stored: a deleted document leaves no trace here).
create view sheratan_reporting.ingest_daily with (security_invoker = true) as
  with d as (
    select tenant, created_at::date as day, count(*) as documents, sum(octet_length(content)) as document_bytes
      from sheratan.documents group by 1, 2
  ), c as (
    select tenant, created_at::date as day, count(*) as chunks, count(embedding) as embedded_chunks,
           sum(octet_length(content)) as chunk_bytes, sum(token_count) as chunk_tokens
      from sheratan.document_chunks group by 1, 2
  )
  select tenant, day,
         coalesce(d.documents, 0) as documents,
         coalesce(d.document_bytes, 0) as document_bytes,
         coalesce(c.chunks, 0) as chunks,
         coalesce(c.embedded_chunks, 0) as embedded_chunks,
         coalesce(c.chunk_bytes, 0) as chunk_bytes,
         c.chunk_tokens
    from d full join c using (tenant, day);
comment on view sheratan_reporting.ingest_daily is
  'Ingest volume per day (the session''s time zone): documents and chunks stored that day and still present, their bytes and tokens, and how many of those chunks have an embedding.';
comment on column sheratan_reporting.ingest_daily.tenant is 'The tenant (always the caller''s).';
comment on column sheratan_reporting.ingest_daily.day is 'The day they were stored.';
comment on column sheratan_reporting.ingest_daily.documents is 'Documents stored that day.';
comment on column sheratan_reporting.ingest_daily.document_bytes is 'Their content, in bytes (UTF-8).';
comment on column sheratan_reporting.ingest_daily.chunks is 'Chunks stored that day.';
comment on column sheratan_reporting.ingest_daily.embedded_chunks is 'Of those, the chunks that have an embedding now.';
comment on column sheratan_reporting.ingest_daily.chunk_bytes is 'The chunks'' text, in bytes (UTF-8).';
comment on column sheratan_reporting.ingest_daily.chunk_tokens is 'The chunks'' tokens, where counted (null when none was).';

create view sheratan_reporting.embedding_coverage with (security_invoker = true) as
  select c.tenant,
         c.embedding_model as model,
         count(*) as chunks,
         count(c.embedding) as embedded,
         count(*) - count(c.embedding) as missing,
         count(c.embedding)::double precision / count(*) as coverage
    from sheratan.document_chunks c
   group by c.tenant, c.embedding_model;
comment on view sheratan_reporting.embedding_coverage is
  'Embedding coverage per model: the caller''s chunks by the model that embedded them (null: the client brought the vector, or there is none yet), how many have an embedding and the share.';
comment on column sheratan_reporting.embedding_coverage.tenant is 'The tenant (always the caller''s).';
comment on column sheratan_reporting.embedding_coverage.model is 'The model that embedded the chunks (document_chunks.embedding_model); null: client vectors or not embedded yet.';
comment on column sheratan_reporting.embedding_coverage.chunks is 'Chunks.';
comment on column sheratan_reporting.embedding_coverage.embedded is 'Chunks with an embedding.';
comment on column sheratan_reporting.embedding_coverage.missing is 'Chunks without one (searches cannot find them).';
comment on column sheratan_reporting.embedding_coverage.coverage is 'embedded / chunks (0 to 1).';

-- A job counts once on the day it was enqueued and once on the day it ended
-- (completed, failed for good, or cancelled: its last change).
create view sheratan_reporting.job_daily with (security_invoker = true) as
  with events as (
    select j.tenant, j.job_type, j.created_at::date as day, 'enqueued' as event, j.attempts from sheratan.jobs j
    union all
    select j.tenant, j.job_type, j.updated_at::date, j.status, j.attempts from sheratan.jobs j
     where j.status in ('completed', 'failed', 'cancelled')
  )
  select e.tenant, e.day, e.job_type,
         count(*) filter (where e.event = 'enqueued') as enqueued,
         count(*) filter (where e.event = 'completed') as completed,
         count(*) filter (where e.event = 'failed') as failed,
         count(*) filter (where e.event = 'cancelled') as cancelled,
         (count(*) filter (where e.event = 'failed'))::double precision
           / nullif(count(*) filter (where e.event in ('completed', 'failed')), 0) as failure_rate,
         avg(e.attempts) filter (where e.event in ('completed', 'failed')) as mean_attempts
    from events e
   group by e.tenant, e.day, e.job_type;
comment on view sheratan_reporting.job_daily is
  'Job throughput per day (the session''s time zone) and type: jobs enqueued that day, jobs that ended that day (completed, failed after their last attempt, cancelled), the failure rate of those that ran to an end and their mean attempts.';
comment on column sheratan_reporting.job_daily.tenant is 'The tenant (always the caller''s).';
comment on column sheratan_reporting.job_daily.day is 'The day.';
comment on column sheratan_reporting.job_daily.job_type is 'The job type.';
comment on column sheratan_reporting.job_daily.enqueued is 'Jobs enqueued that day.';
comment on column sheratan_reporting.job_daily.completed is 'Jobs completed that day.';
comment on column sheratan_reporting.job_daily.failed is 'Jobs that failed for good that day (their last attempt).';
comment on column sheratan_reporting.job_daily.cancelled is 'Jobs cancelled that day.';
comment on column sheratan_reporting.job_daily.failure_rate is 'failed / (completed + failed) that day; null when none ended.';
comment on column sheratan_reporting.job_daily.mean_attempts is 'Mean attempts of the jobs that completed or failed that day.';

create view sheratan_reporting.job_queue with (security_invoker = true) as
  select j.tenant, j.job_type,
         count(*) filter (where j.status = 'pending') as pending,
         count(*) filter (where j.status = 'pending' and j.run_at <= now()) as due,
         count(*) filter (where j.status = 'running') as running,
         count(*) filter (where j.status = 'completed') as completed,
         count(*) filter (where j.status = 'failed') as failed,
         count(*) filter (where j.status = 'cancelled') as cancelled,
         extract(epoch from now() - min(j.run_at) filter (where j.status = 'pending' and j.run_at <= now()))::double precision as oldest_due_seconds
    from sheratan.jobs j
   group by j.tenant, j.job_type;
comment on view sheratan_reporting.job_queue is
  'The job queue now, per type: jobs by status, how many are due, and how long the oldest due job has waited.';
comment on column sheratan_reporting.job_queue.tenant is 'The tenant (always the caller''s).';
comment on column sheratan_reporting.job_queue.job_type is 'The job type.';
comment on column sheratan_reporting.job_queue.pending is 'Jobs waiting (due or not).';
comment on column sheratan_reporting.job_queue.due is 'Pending jobs whose run_at has come.';
comment on column sheratan_reporting.job_queue.running is 'Jobs a worker holds.';
comment on column sheratan_reporting.job_queue.completed is 'Jobs completed.';
comment on column sheratan_reporting.job_queue.failed is 'Jobs failed for good.';
comment on column sheratan_reporting.job_queue.cancelled is 'Jobs cancelled.';
comment on column sheratan_reporting.job_queue.oldest_due_seconds is 'Seconds the oldest due job has waited past its run_at; null when none is due.';

-- The ANN indexes are one structure for every tenant: their size and scan
-- counters (pg_stat_user_indexes, this server's since its statistics were
-- last reset; on a replica, that replica's) are the whole store's, not the
-- caller's. They say how big the index is and how much it is used by
-- everyone, nothing of another tenant's rows; the caller's own share is
-- tenant_entries, counted under row-level security.
create view sheratan_reporting.ann_index_usage with (security_invoker = true) as
  select ic.relname::text as index_name,
         am.amname as method,
         a.attname as column_name,
         pg_relation_size(i.indexrelid) as size_bytes,
         s.idx_scan as scans,
         s.idx_tup_read as tuples_read,
         s.idx_tup_fetch as tuples_fetched,
         (select count(*) from sheratan.document_chunks c where c.embedding is not null) as tenant_entries
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_am am on am.oid = ic.relam
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    left join pg_stat_user_indexes s on s.indexrelid = i.indexrelid
   where i.indrelid = 'sheratan.document_chunks'::regclass
     and am.amname in ('hnsw', 'ivfflat');
comment on view sheratan_reporting.ann_index_usage is
  'The ANN (HNSW or IVFFlat) indexes of document_chunks: size and use. Not per tenant: the index and its counters are shared by every tenant of the store (scans are everyone''s searches); tenant_entries is the caller''s own share.';
comment on column sheratan_reporting.ann_index_usage.index_name is 'The index.';
comment on column sheratan_reporting.ann_index_usage.method is 'hnsw or ivfflat.';
comment on column sheratan_reporting.ann_index_usage.column_name is 'The column it indexes (embedding; embedding_next during a model switch).';
comment on column sheratan_reporting.ann_index_usage.size_bytes is 'Its size on disk, in bytes (all tenants).';
comment on column sheratan_reporting.ann_index_usage.scans is 'Index scans since the statistics were reset (all tenants, this server).';
comment on column sheratan_reporting.ann_index_usage.tuples_read is 'Index entries returned by its scans (all tenants, this server).';
comment on column sheratan_reporting.ann_index_usage.tuples_fetched is 'Table rows fetched by simple scans of it (all tenants, this server).';
comment on column sheratan_reporting.ann_index_usage.tenant_entries is 'The caller''s chunks that have an embedding: its share of the index''s entries.';

revoke all on all tables in schema sheratan_reporting from public;
grant select on all tables in schema sheratan_reporting to :DATABASE_READONLY;
