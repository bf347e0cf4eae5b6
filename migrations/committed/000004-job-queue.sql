--! Previous: sha1:431069b0948eeb586332c2b62310947e5d17c96d
--! Hash: sha1:c4617db1d8d8e271ec21e0b442dec5d646555e74
--! Message: job queue

-- SPEC §6 (jobs). State changes happen only here: API roles have no UPDATE on
-- jobs; the transitions run as the owner (security definer, in the private
-- schema) and always within the caller's tenant. Idempotent for `db:watch`.

drop function if exists sheratan.enqueue_job(text, jsonb, integer, timestamptz, integer);
drop function if exists sheratan.claim_job(text, text[]);
drop function if exists sheratan.complete_job(bigint, text, jsonb);
drop function if exists sheratan.fail_job(bigint, text, text);
drop function if exists sheratan.cancel_job(bigint);
drop function if exists sheratan_private.claim_job(text, text[]);
drop function if exists sheratan_private.finish_job(bigint, text, boolean, jsonb, text);
drop function if exists sheratan_private.cancel_job(bigint);
drop function if exists sheratan_private.job_lock_timeout();

-- Claiming scans only due pending jobs, best first; stale locks are found by locked_at.
create index if not exists jobs_claimable_idx on sheratan.jobs (tenant, priority desc, run_at, id) where status = 'pending';
create index if not exists jobs_running_locked_at_idx on sheratan.jobs (tenant, locked_at) where status = 'running';

create function sheratan_private.job_lock_timeout() returns interval
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$ select coalesce(nullif(current_setting('sheratan.job_lock_timeout', true), ''), '600')::integer * interval '1 second' $$;
comment on function sheratan_private.job_lock_timeout() is 'How long a worker may hold a job before it is claimable again (JOB_LOCK_TIMEOUT, seconds).';

create function sheratan.enqueue_job(
  job_type text,
  payload jsonb default '{}',
  priority integer default 0,
  run_at timestamptz default null,
  max_attempts integer default 3
) returns sheratan.jobs
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  job sheratan.jobs;
begin
  if job_type is null or length(job_type) = 0 then
    raise exception 'jobType must not be empty' using errcode = '22023';
  end if;
  if coalesce(max_attempts, 3) < 1 then
    raise exception 'maxAttempts must be at least 1, not %', max_attempts using errcode = '22023';
  end if;
  insert into sheratan.jobs (job_type, payload, priority, run_at, max_attempts)
  values (job_type, coalesce(payload, '{}'::jsonb), coalesce(priority, 0), coalesce(run_at, now()), coalesce(max_attempts, 3))
  returning * into job;
  return job;
end;
$$;
comment on function sheratan.enqueue_job(text, jsonb, integer, timestamptz, integer) is
  E'@resultFieldName job\nAdds a pending job: higher `priority` runs first; not before `runAt`; retried until `maxAttempts`.';

create function sheratan_private.claim_job(worker_id text, job_types text[]) returns sheratan.jobs
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := sheratan_private.current_tenant();
  job sheratan.jobs;
begin
  if caller_tenant is null then
    raise exception 'claiming a job needs a tenant' using errcode = '42501';
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
     set status = 'running', locked_by = worker_id, locked_at = now(), attempts = j.attempts + 1
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

create function sheratan.claim_job(worker_id text, job_types text[] default null) returns sheratan.jobs
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$ select * from sheratan_private.claim_job(worker_id, job_types) $$;
comment on function sheratan.claim_job(text, text[]) is
  E'@resultFieldName job\nClaims the best due pending job of these types (highest priority, then oldest) for `workerId`; null when there is none. Concurrent claimers never get the same job.';

create function sheratan_private.finish_job(job_id bigint, worker_id text, succeeded boolean, result jsonb, error text) returns sheratan.jobs
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  job sheratan.jobs;
begin
  select * into job from sheratan.jobs j
   where j.id = finish_job.job_id and j.tenant = sheratan_private.current_tenant()
   for update;
  if job.id is null then
    raise exception 'no job % in this tenant', job_id using errcode = '22023';
  end if;
  if job.status <> 'running' or job.locked_by is distinct from worker_id then
    raise exception 'job % is not running for worker % (it is %)', job_id, worker_id,
      case when job.status = 'running' then 'held by worker ' || job.locked_by else job.status end
      using errcode = '55000';
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

create function sheratan.complete_job(job_id bigint, worker_id text, result jsonb default null) returns sheratan.jobs
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$ select * from sheratan_private.finish_job(job_id, worker_id, true, result, null) $$;
comment on function sheratan.complete_job(bigint, text, jsonb) is
  E'@resultFieldName job\nMarks a running job completed with its `result`. Only the worker holding the job may do this.';

create function sheratan.fail_job(job_id bigint, worker_id text, error text) returns sheratan.jobs
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$ select * from sheratan_private.finish_job(job_id, worker_id, false, null, error) $$;
comment on function sheratan.fail_job(bigint, text, text) is
  E'@resultFieldName job\nRecords a failed attempt: the job is retried later (exponential backoff) while attempts remain, else it stays failed.';

create function sheratan_private.cancel_job(job_id bigint) returns sheratan.jobs
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  job sheratan.jobs;
begin
  update sheratan.jobs j set status = 'cancelled'
   where j.id = cancel_job.job_id and j.tenant = sheratan_private.current_tenant() and j.status = 'pending'
  returning * into job;
  if job.id is null then
    raise exception 'job % is not a pending job in this tenant', job_id using errcode = '55000';
  end if;
  return job;
end;
$$;

create function sheratan.cancel_job(job_id bigint) returns sheratan.jobs
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$ select * from sheratan_private.cancel_job(job_id) $$;
comment on function sheratan.cancel_job(bigint) is E'@resultFieldName job\nCancels a pending job.';

revoke all on function sheratan_private.job_lock_timeout() from public;
revoke all on function sheratan_private.claim_job(text, text[]) from public;
revoke all on function sheratan_private.finish_job(bigint, text, boolean, jsonb, text) from public;
revoke all on function sheratan_private.cancel_job(bigint) from public;
revoke all on function sheratan.enqueue_job(text, jsonb, integer, timestamptz, integer) from public;
revoke all on function sheratan.claim_job(text, text[]) from public;
revoke all on function sheratan.complete_job(bigint, text, jsonb) from public;
revoke all on function sheratan.fail_job(bigint, text, text) from public;
revoke all on function sheratan.cancel_job(bigint) from public;
grant execute on function sheratan_private.job_lock_timeout() to sheratan_app;
grant execute on function sheratan_private.claim_job(text, text[]) to sheratan_app;
grant execute on function sheratan_private.finish_job(bigint, text, boolean, jsonb, text) to sheratan_app;
grant execute on function sheratan_private.cancel_job(bigint) to sheratan_app;
grant execute on function sheratan.enqueue_job(text, jsonb, integer, timestamptz, integer) to sheratan_app;
grant execute on function sheratan.claim_job(text, text[]) to sheratan_app;
grant execute on function sheratan.complete_job(bigint, text, jsonb) to sheratan_app;
grant execute on function sheratan.fail_job(bigint, text, text) to sheratan_app;
grant execute on function sheratan.cancel_job(bigint) to sheratan_app;
