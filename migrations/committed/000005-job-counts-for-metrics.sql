--! Previous: sha1:c4617db1d8d8e271ec21e0b442dec5d646555e74
--! Hash: sha1:401ca04365b3dafbd3c7ff03ab9b0d6afdc1862f
--! Message: job counts for metrics

-- /metrics reports jobs by status across tenants: an aggregate the gateway's
-- own role (the authenticator) may read, without any row access.

drop function if exists sheratan_private.job_status_counts();
create function sheratan_private.job_status_counts() returns table (status text, jobs bigint)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$ select j.status, count(*) from sheratan.jobs j group by j.status $$;
comment on function sheratan_private.job_status_counts() is 'Jobs by status, all tenants, for /metrics.';
revoke all on function sheratan_private.job_status_counts() from public;
grant usage on schema sheratan_private to sheratan_authenticator;
grant execute on function sheratan_private.job_status_counts() to sheratan_authenticator;
