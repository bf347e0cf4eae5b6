-- Enter migration here

-- >>> section sql-hardening
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
          and (job_types is null or c.job_type = any (job_types))
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
-- <<< section sql-hardening
