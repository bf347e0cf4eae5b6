--! Previous: sha1:d81c1c32c7aba8f7553299bee72212e71bbf2d4e
--! Hash: sha1:d3e393d033fea2673783e82db6102a55191be87d
--! Message: Full-text matching through the GIN index under RLS

-- Full-text matching through the GIN index. Under row-level security the
-- planner may not use a non-leakproof operator such as `@@` as an index
-- condition (it must not run before the tenant policy), so the text side of
-- hybrid search scanned every chunk: ~60 ms at 20k chunks, ~240 ms at 50k.
-- As a security definer helper with the tenant condition written out, the
-- index serves it. It returns ids and scores only; the rows themselves are
-- read as the caller, under RLS, by the search that uses them. (Parameters as
-- in chunk_filter_sql, with $12 the tenant.)
create or replace function sheratan_private.text_matches(tsq tsquery, lim integer, filter jsonb)
  returns table (id uuid, document_id uuid, score double precision)
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  f jsonb := coalesce(filter, '{}'::jsonb);
  tenant text := sheratan_private.current_tenant();
begin
  if tenant is null then
    return;
  end if;
  return query execute
    'select c.id, c.document_id, ts_rank_cd(c.content_search, $9)::double precision as score'
    || ' from sheratan.document_chunks c where c.tenant = $12 and c.content_search @@ $9'
    || sheratan_private.chunk_filter_sql(f)
    || ' order by score desc, c.id limit $2'
    using null::vector, lim,
          (select array_agg(x::uuid) from jsonb_array_elements_text(f -> 'documentIds') x),
          (select array_agg(x) from jsonb_array_elements_text(f -> 'sources') x),
          f -> 'metadata', (f ->> 'createdAfter')::timestamptz, (f ->> 'createdBefore')::timestamptz,
          null::double precision, tsq, null::uuid, null::uuid, tenant;
end;
$$;
comment on function sheratan_private.text_matches(tsquery, integer, jsonb) is
  'The caller''s chunks matching a text query (their tenant only), best first by ts_rank_cd, through the GIN index.';
revoke all on function sheratan_private.text_matches(tsquery, integer, jsonb) from public;
grant execute on function sheratan_private.text_matches(tsquery, integer, jsonb) to sheratan_app, sheratan_readonly;
