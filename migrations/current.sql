-- Enter migration here

-- >>> section live
-- Issue 27 item 1: subscriptions. A change to a job's status, a document
-- (inserted, changed, deleted) or a document's embedding status is announced
-- at commit on its tenant's channel, `sheratan_live_` || md5(tenant) (a
-- channel name is at most 63 bytes; a tenant may be 200 characters), with its
-- kind, operation, id and tenant: never the row. The gateway listens on the
-- channels of the tenants whose sockets subscribed and re-reads each row as
-- the subscriber's role, under row-level security (src/graphql/live-events.ts,
-- plugins/live.ts).
create or replace function sheratan_private.live_channel(tenant text) returns text
  language sql immutable parallel safe
  set search_path = pg_catalog
as $$ select 'sheratan_live_' || md5(tenant) $$;
comment on function sheratan_private.live_channel(text) is
  'The NOTIFY channel of a tenant''s live events (subscriptions): sheratan_live_ followed by the md5 of the tenant.';
revoke all on function sheratan_private.live_channel(text) from public;

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
-- <<< section live
