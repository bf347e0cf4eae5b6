--! Previous: sha1:17e36b0c92e1607a352d2d4d835bbeb73eac59ed
--! Hash: sha1:356149f2ce6e9181572dda68e4521c7f7fb2db49
--! Message: Live events on keyed channels; a model switch re-points what named the live embedding column

-- ==========================================================================
-- Live events: per-tenant NOTIFY of job status and document changes on channels named by a keyed hash
-- ==========================================================================
-- Issue 27 item 1: subscriptions. A change to a job's status, a document
-- (inserted, changed, deleted) or a document's embedding status is announced
-- at commit on its tenant's channel, live_channel(tenant) (a channel name is
-- at most 63 bytes; a tenant may be 200 characters), with its
-- kind, operation, id and tenant: never the row. The gateway listens on the
-- channels of the tenants whose sockets subscribed and re-reads each row as
-- the subscriber's role, under row-level security (src/graphql/live-events.ts,
-- plugins/live.ts).
--
-- Postgres has no privilege on LISTEN or NOTIFY: any login may use any
-- channel it can name. A channel is therefore named by a keyed hash, under a
-- secret only the owner reads (a reporting login that computed md5(tenant)
-- heard another tenant's changes as they committed), and only the gateway's
-- login may ask for a tenant's channel.
create table if not exists sheratan_private.live_secret (
  only_row boolean primary key default true check (only_row),
  secret text not null default replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
);
insert into sheratan_private.live_secret default values on conflict do nothing;
revoke all on sheratan_private.live_secret from public;
comment on table sheratan_private.live_secret is
  'The key of the live events'' channel names (live_channel): random, made once, readable by the owner only.';

drop function if exists sheratan_private.live_channel(text);
create function sheratan_private.live_channel(tenant text) returns text
  language sql stable security definer parallel safe
  set search_path = pg_catalog
as $$ select 'sheratan_live_' || md5(s.secret || '/' || tenant) from sheratan_private.live_secret s $$;
comment on function sheratan_private.live_channel(text) is
  'The NOTIFY channel of a tenant''s live events (subscriptions): sheratan_live_ followed by the md5 of the secret and the tenant; for the gateway''s login (it LISTENs) and the triggers.';
revoke all on function sheratan_private.live_channel(text) from public;
grant execute on function sheratan_private.live_channel(text) to :DATABASE_AUTHENTICATOR;

create or replace function sheratan_private.tg__live_notify() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  row_data record := case when tg_op = 'DELETE' then old else new end;
  embedding boolean := false;
begin
  if tg_table_name = 'jobs' then
    if tg_op = 'UPDATE' and new.status is not distinct from old.status then
      return null;
    end if;
  elsif tg_op = 'INSERT' then
    embedding := true;
  elsif tg_op = 'UPDATE' then
    embedding := new.embedding_status is distinct from old.embedding_status;
  end if;
  if row_data.tenant is null then
    return null;
  end if;
  perform pg_notify(sheratan_private.live_channel(row_data.tenant), json_build_object(
    'kind', case when tg_table_name = 'jobs' then 'job' else 'document' end,
    'op', tg_op,
    'id', row_data.id::text,
    'tenant', row_data.tenant,
    'embedding', embedding)::text);
  return null;
end;
$$;
comment on function sheratan_private.tg__live_notify() is
  'Trigger: announces a job''s status change, or a document''s insert, update or delete (and whether its embedding status changed), on its tenant''s live channel at commit.';
revoke all on function sheratan_private.tg__live_notify() from public;

drop trigger if exists _900_live_notify on sheratan.jobs;
create trigger _900_live_notify after insert or update of status on sheratan.jobs
  for each row execute function sheratan_private.tg__live_notify();
drop trigger if exists _900_live_notify on sheratan.documents;
create trigger _900_live_notify after insert or update or delete on sheratan.documents
  for each row execute function sheratan_private.tg__live_notify();

-- ==========================================================================
-- A model switch re-points the views and indexes that named the live embedding column
-- ==========================================================================
-- A model switch (000013) renames document_chunks.embedding to
-- embedding_previous and embedding_next to embedding. Objects that name the
-- column, such as the reporting views and the partial index of chunks awaiting
-- an embedding (000015), follow the rename: they went on reading the previous
-- model's column, and `embeddings:migrate --drop-previous` then failed ("other
-- objects depend on it"). The switch now re-points them, in the same
-- transaction, from their own definitions: every view and index that depends
-- on embedding_previous (the ANN index excepted: the switch renames it itself)
-- is made again on the live column.
do $do$
begin
  -- The switch's column swap keeps its body (000013) under a new name; switch_embedding_model wraps it.
  if exists (select 1 from pg_proc where oid = 'sheratan_private.switch_embedding_model(boolean)'::regprocedure and prosrc not like '%switch_embedding_columns%') then
    alter function sheratan_private.switch_embedding_model(boolean) rename to switch_embedding_columns;
  end if;
end
$do$;
comment on function sheratan_private.switch_embedding_columns(boolean) is
  'The column swap of an embedding model switch (migration 000013); switch_embedding_model calls it, then re-points what named the column.';

create or replace function sheratan_private.repoint_embedding_dependents() returns void
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  dep record;
  previous smallint := (select attnum from pg_attribute
                         where attrelid = 'sheratan.document_chunks'::regclass and attname = 'embedding_previous' and not attisdropped);
begin
  if previous is null then
    return;
  end if;
  for dep in
    select distinct v.oid, v.relkind, v.oid::regclass::text as name
      from pg_depend d
      join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
      join pg_class v on v.oid = r.ev_class
     where d.refobjid = 'sheratan.document_chunks'::regclass and d.refobjsubid = previous and v.relkind = 'v'
  loop
    execute format('create or replace view %s with (security_invoker = %s) as %s', dep.name,
      coalesce((select option_value from pg_options_to_table((select reloptions from pg_class where oid = dep.oid)) where option_name = 'security_invoker'), 'false'),
      regexp_replace(pg_get_viewdef(dep.oid), '\membedding_previous\M', 'embedding', 'g'));
  end loop;
  for dep in
    select distinct i.oid, i.oid::regclass::text as name, pg_get_indexdef(i.oid) as def
      from pg_depend d
      join pg_class i on i.oid = d.objid and d.classid = 'pg_class'::regclass and i.relkind = 'i'
     where d.refobjid = 'sheratan.document_chunks'::regclass and d.refobjsubid = previous
       and i.relname <> 'document_chunks_embedding_previous_idx'
  loop
    execute format('drop index %s', dep.name);
    execute regexp_replace(dep.def, '\membedding_previous\M', 'embedding', 'g');
  end loop;
end;
$$;
comment on function sheratan_private.repoint_embedding_dependents() is
  'After a model switch: views and indexes that named the live embedding column, and followed it to embedding_previous, are made again on the new live column.';
revoke all on function sheratan_private.repoint_embedding_dependents() from public;

create or replace function sheratan_private.switch_embedding_model(force boolean) returns bigint
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  missing bigint := sheratan_private.switch_embedding_columns(force);
begin
  perform sheratan_private.repoint_embedding_dependents();
  return missing;
end;
$$;
comment on function sheratan_private.switch_embedding_model(boolean) is
  'embeddings:migrate --switch: swaps the live and next embedding columns (switch_embedding_columns), then re-points the views and indexes that named the live one.';
revoke all on function sheratan_private.switch_embedding_model(boolean) from public;
revoke all on function sheratan_private.switch_embedding_columns(boolean) from public;
