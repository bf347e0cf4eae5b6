--! Previous: sha1:401ca04365b3dafbd3c7ff03ab9b0d6afdc1862f
--! Hash: sha1:b5e54c245b0ed8dfd70c0f984baa36c95c5035ec
--! Message: Similarity search returns the chunk rows

-- Similarity search returns the matching chunk rows themselves, so the
-- gateway answers `searchDocumentChunks { distance chunk { … } }` with one
-- statement (the distance is recomputed for the k rows it returns) instead of
-- a second lookup of the chunks by id. A search without filters or threshold
-- (the common case) runs a static query, whose plan is cached per session;
-- filtered searches are still planned per call with their real values.
drop function if exists sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text);
drop type if exists sheratan.document_chunk_match;

create function sheratan.search_document_chunks(
  embedding vector,
  first integer default 10,
  "offset" integer default 0,
  min_similarity double precision default null,
  filter jsonb default null,
  query_text text default null
) returns setof sheratan.document_chunks
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  started timestamptz := clock_timestamp();
  q vector := sheratan_private.assert_embedding(embedding);
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  k integer := coalesce(first, 10);
  skip integer := coalesce("offset", 0);
  ids uuid[];
  dists double precision[];
begin
  if q is null then
    raise exception 'embedding is required' using errcode = '22023';
  end if;
  if k < 1 then
    raise exception 'first must be at least 1, not %', k using errcode = '22023';
  end if;
  if skip < 0 then
    raise exception 'offset must not be negative, not %', skip using errcode = '22023';
  end if;
  if f ? 'metadata' and jsonb_typeof(f -> 'metadata') <> 'object' then
    raise exception 'filter.metadata must be a JSON object' using errcode = '22023';
  end if;

  if f = '{}'::jsonb and min_similarity is null then
    select coalesce(array_agg(h.id order by h.distance, h.id), '{}'), coalesce(array_agg(h.distance order by h.distance, h.id), '{}')
      into ids, dists
      from (select c.id, c.embedding <=> q as distance
              from sheratan.document_chunks c
             where c.embedding is not null
             order by c.embedding <=> q
             limit k + skip) h;
  else
    execute 'select coalesce(array_agg(h.id order by h.distance, h.id), ''{}''), coalesce(array_agg(h.distance order by h.distance, h.id), ''{}'') from ('
            || sheratan_private.search_sql(f, min_similarity is not null) || ') h'
      into ids, dists
      using q, k + skip,
            (select array_agg(x::uuid) from jsonb_array_elements_text(f -> 'documentIds') x),
            (select array_agg(x) from jsonb_array_elements_text(f -> 'sources') x),
            f -> 'metadata',
            (f ->> 'createdAfter')::timestamptz,
            (f ->> 'createdBefore')::timestamptz,
            1 - min_similarity;
  end if;
  ids := ids[skip + 1:];
  dists := dists[skip + 1:];

  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object('offset', "offset", 'minSimilarity', min_similarity)),
    cardinality(ids), 1 - dists[1],
    extract(epoch from clock_timestamp() - started) * 1000
  );
  return query
    select c.* from unnest(ids) with ordinality as u(id, i)
      join sheratan.document_chunks c on c.id = u.id
     order by u.i;
end;
$$;
comment on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) is
  E'@behavior -*\nSimilarity search over the caller''s chunks, most similar first; exposed as `Query.searchDocumentChunks` by a plugin.';
revoke all on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) from public;
grant execute on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) to sheratan_app, sheratan_readonly;
