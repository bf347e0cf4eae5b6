--! Previous: sha1:60a54fdb4a0cc10d64c66071a93d09ed681aceeb
--! Hash: sha1:0bd58e3c6593d2d9f4eb63e800636cdc4244451d
--! Message: security: grants, tenant row-level security, audit trail

-- SPEC §5. Idempotent: every object is dropped and recreated, so `db:watch` can re-run it.

alter default privileges revoke all on sequences from public;
alter default privileges revoke all on functions from public;
revoke all on schema public from public;
grant usage on schema public to sheratan_app, sheratan_readonly, sheratan_anonymous;

grant usage on schema sheratan to sheratan_app, sheratan_readonly, sheratan_anonymous;
-- The private schema holds helpers the policies call; nothing in it is exposed over GraphQL.
revoke all on schema sheratan_private from public;
grant usage on schema sheratan_private to sheratan_app, sheratan_readonly, sheratan_anonymous;

-- Claims arrive as transaction-local settings (jwt.claims.*) set by the gateway.
create or replace function sheratan_private.current_tenant() returns text
  language sql stable parallel safe
  set search_path = pg_catalog, pg_temp
as $$ select nullif(current_setting('jwt.claims.tenant', true), '') $$;
comment on function sheratan_private.current_tenant() is 'The tenant of the current request (the token''s `tenant` claim), or null.';

create or replace function sheratan_private.current_user_id() returns text
  language sql stable parallel safe
  set search_path = pg_catalog, pg_temp
as $$ select nullif(current_setting('jwt.claims.sub', true), '') $$;
comment on function sheratan_private.current_user_id() is 'The user of the current request (the token''s `sub` claim), or null.';

revoke all on function sheratan_private.current_tenant() from public;
revoke all on function sheratan_private.current_user_id() from public;
grant execute on function sheratan_private.current_tenant() to sheratan_app, sheratan_readonly, sheratan_anonymous;
grant execute on function sheratan_private.current_user_id() to sheratan_app, sheratan_readonly, sheratan_anonymous;

-- Tenant columns are filled from the claims, never from input.
alter table sheratan.documents alter column tenant set default sheratan_private.current_tenant();
alter table sheratan.document_chunks alter column tenant set default sheratan_private.current_tenant();
alter table sheratan.jobs alter column tenant set default sheratan_private.current_tenant();

--------------------------------------------------------------------------------
-- Row-level security: every policy is scoped to the tenant claim.
alter table sheratan.documents enable row level security;
alter table sheratan.document_chunks enable row level security;
alter table sheratan.jobs enable row level security;
alter table sheratan.audit_logs enable row level security;
alter table sheratan.search_logs enable row level security;

revoke all on sheratan.documents, sheratan.document_chunks, sheratan.jobs, sheratan.audit_logs, sheratan.search_logs
  from public, sheratan_app, sheratan_readonly, sheratan_anonymous;

-- documents
drop policy if exists select_own_tenant on sheratan.documents;
drop policy if exists insert_own_tenant on sheratan.documents;
drop policy if exists update_own_tenant on sheratan.documents;
drop policy if exists delete_own_tenant on sheratan.documents;
create policy select_own_tenant on sheratan.documents for select to sheratan_app, sheratan_readonly
  using (tenant = sheratan_private.current_tenant());
create policy insert_own_tenant on sheratan.documents for insert to sheratan_app
  with check (tenant = sheratan_private.current_tenant());
create policy update_own_tenant on sheratan.documents for update to sheratan_app
  using (tenant = sheratan_private.current_tenant()) with check (tenant = sheratan_private.current_tenant());
create policy delete_own_tenant on sheratan.documents for delete to sheratan_app
  using (tenant = sheratan_private.current_tenant());
grant select on sheratan.documents to sheratan_app, sheratan_readonly;
grant insert (title, content, source, metadata) on sheratan.documents to sheratan_app;
grant update (title, content, source, metadata) on sheratan.documents to sheratan_app;
grant delete on sheratan.documents to sheratan_app;

-- document_chunks: a chunk may only point at a document of the same tenant.
drop policy if exists select_own_tenant on sheratan.document_chunks;
drop policy if exists insert_own_tenant on sheratan.document_chunks;
drop policy if exists update_own_tenant on sheratan.document_chunks;
drop policy if exists delete_own_tenant on sheratan.document_chunks;
create policy select_own_tenant on sheratan.document_chunks for select to sheratan_app, sheratan_readonly
  using (tenant = sheratan_private.current_tenant());
create policy insert_own_tenant on sheratan.document_chunks for insert to sheratan_app
  with check (
    tenant = sheratan_private.current_tenant()
    and exists (select 1 from sheratan.documents d where d.id = document_id and d.tenant = sheratan_private.current_tenant())
  );
create policy update_own_tenant on sheratan.document_chunks for update to sheratan_app
  using (tenant = sheratan_private.current_tenant()) with check (tenant = sheratan_private.current_tenant());
create policy delete_own_tenant on sheratan.document_chunks for delete to sheratan_app
  using (tenant = sheratan_private.current_tenant());
grant select on sheratan.document_chunks to sheratan_app, sheratan_readonly;
grant insert (document_id, chunk_index, content, embedding, metadata, token_count) on sheratan.document_chunks to sheratan_app;
grant update (chunk_index, content, embedding, metadata, token_count) on sheratan.document_chunks to sheratan_app;
grant delete on sheratan.document_chunks to sheratan_app;

-- jobs: state changes go through the job functions; clients enqueue and read.
drop policy if exists select_own_tenant on sheratan.jobs;
drop policy if exists insert_own_tenant on sheratan.jobs;
create policy select_own_tenant on sheratan.jobs for select to sheratan_app, sheratan_readonly
  using (tenant = sheratan_private.current_tenant());
create policy insert_own_tenant on sheratan.jobs for insert to sheratan_app
  with check (tenant = sheratan_private.current_tenant() and status = 'pending' and attempts = 0);
grant select on sheratan.jobs to sheratan_app, sheratan_readonly;
grant insert (job_type, payload, priority, run_at, max_attempts) on sheratan.jobs to sheratan_app;

-- audit_logs and search_logs: readable within the tenant, written only by security definer code.
drop policy if exists select_own_tenant on sheratan.audit_logs;
create policy select_own_tenant on sheratan.audit_logs for select to sheratan_app, sheratan_readonly
  using (tenant = sheratan_private.current_tenant());
grant select on sheratan.audit_logs to sheratan_app, sheratan_readonly;

drop policy if exists select_own_tenant on sheratan.search_logs;
create policy select_own_tenant on sheratan.search_logs for select to sheratan_app, sheratan_readonly
  using (tenant = sheratan_private.current_tenant());
grant select on sheratan.search_logs to sheratan_app, sheratan_readonly;

--------------------------------------------------------------------------------
-- Audit trail. Triggers run as the owner (security definer) so that API roles
-- need no write access to audit_logs; nobody but the owner can change a row.

create or replace function sheratan_private.tg__audit_row() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  rec jsonb := to_jsonb(coalesce(new, old));
  changed jsonb;
begin
  if tg_op = 'UPDATE' then
    select coalesce(jsonb_agg(n.key order by n.key), '[]'::jsonb) into changed
      from jsonb_each(to_jsonb(new)) n
      where n.value is distinct from (to_jsonb(old) -> n.key) and n.key not in ('updated_at');
  end if;
  insert into sheratan.audit_logs (event_type, user_id, tenant, resource, action, details)
  values (
    tg_table_name || '.' || lower(tg_op),
    sheratan_private.current_user_id(),
    coalesce(rec ->> 'tenant', sheratan_private.current_tenant()),
    tg_table_name || '/' || (rec ->> 'id'),
    lower(tg_op),
    jsonb_strip_nulls(jsonb_build_object(
      'changed', changed,
      'title', case when tg_table_name = 'documents' then rec ->> 'title' end,
      'job_type', case when tg_table_name = 'jobs' then rec ->> 'job_type' end,
      'status', case when tg_table_name = 'jobs' then rec ->> 'status' end
    ))
  );
  return null;
end;
$$;
comment on function sheratan_private.tg__audit_row() is 'Trigger: one audit row per inserted, updated or deleted row.';

-- Chunks arrive in bulk: one audit row per statement and document.
create or replace function sheratan_private.tg__audit_chunks() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into sheratan.audit_logs (event_type, user_id, tenant, resource, action, details)
  select 'document_chunks.' || lower(tg_op),
         sheratan_private.current_user_id(),
         min(c.tenant),
         'documents/' || c.document_id || '/chunks',
         lower(tg_op),
         jsonb_build_object('count', count(*), 'chunk_indexes', jsonb_agg(c.chunk_index order by c.chunk_index))
    from changed_rows c
   group by c.document_id;
  return null;
end;
$$;
comment on function sheratan_private.tg__audit_chunks() is 'Trigger: one audit row per statement and document for chunk writes.';

revoke all on function sheratan_private.tg__audit_row() from public;
revoke all on function sheratan_private.tg__audit_chunks() from public;

drop trigger if exists _900_audit on sheratan.documents;
create trigger _900_audit after insert or update or delete on sheratan.documents
  for each row execute procedure sheratan_private.tg__audit_row();
drop trigger if exists _900_audit on sheratan.jobs;
create trigger _900_audit after insert or update or delete on sheratan.jobs
  for each row execute procedure sheratan_private.tg__audit_row();
drop trigger if exists _900_audit_insert on sheratan.document_chunks;
drop trigger if exists _900_audit_update on sheratan.document_chunks;
drop trigger if exists _900_audit_delete on sheratan.document_chunks;
create trigger _900_audit_insert after insert on sheratan.document_chunks
  referencing new table as changed_rows for each statement execute procedure sheratan_private.tg__audit_chunks();
create trigger _900_audit_update after update on sheratan.document_chunks
  referencing new table as changed_rows for each statement execute procedure sheratan_private.tg__audit_chunks();
create trigger _900_audit_delete after delete on sheratan.document_chunks
  referencing old table as changed_rows for each statement execute procedure sheratan_private.tg__audit_chunks();

-- Retention (seed guide, "Audit Log Retention"): owner only.
create or replace function sheratan_private.cleanup_audit_logs(days integer) returns bigint
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  deleted bigint;
begin
  if days is null or days < 0 then
    raise exception 'days must be a non-negative number, not %', days using errcode = '22023';
  end if;
  delete from sheratan.audit_logs where created_at < now() - make_interval(days => days);
  get diagnostics deleted = row_count;
  return deleted;
end;
$$;
comment on function sheratan_private.cleanup_audit_logs(integer) is 'Deletes audit rows older than `days` days; returns how many. Owner only.';
revoke all on function sheratan_private.cleanup_audit_logs(integer) from public;
