--! Previous: sha1:4984380f46e5f9a0bac5a869caa38d8460bef08b
--! Hash: sha1:bced1783e4c3e615492374919230980046ab5f58
--! Message: Embeddings above 2,000 dimensions and the ANN index kinds

-- pgvector's HNSW index takes vector columns of up to 2,000 dimensions and
-- halfvec ones of up to 4,000. The committed history creates the column with
-- at most 2,000 (the CLI gives 000001 that much for :VECTOR_DIMENSION); here
-- it gets its real dimension, :EMBEDDING_DIMENSION, and above 2,000 the ANN
-- index is built on `embedding::halfvec(n)` with halfvec_cosine_ops. The
-- searches order by the expression the index has (ann_distance_sql), so the
-- index serves them; the distances they report stay full precision.
do $$
declare
  n integer := :EMBEDDING_DIMENSION;
  have integer := (select a.atttypmod from pg_attribute a
                    where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding');
begin
  if have is distinct from n then
    drop index if exists sheratan.document_chunks_embedding_idx;
    execute format('alter table sheratan.document_chunks alter column embedding type vector(%s)', n);
    if n <= 2000 then
      create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw (embedding vector_cosine_ops);
    else
      execute format('create index document_chunks_embedding_idx on sheratan.document_chunks using hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops)', n);
    end if;
  end if;
end
$$;

-- The ANN index may be built on the embedding itself (vector_cosine_ops), on
-- embedding::halfvec(n) (halfvec_cosine_ops: half the size), or on
-- binary_quantize(embedding)::bit(n) (bit_hamming_ops: a bit per dimension).
-- `npm run index:tune -- --kind …` and VECTOR_INDEX choose; the searches
-- follow whatever the index is (ann_kind). With the binary index the nearest
-- candidates by Hamming distance, ANN_RERANK_FACTOR times as many as asked
-- for (at least 40), are re-ranked by exact cosine distance.

-- What the ANN index is built on: 'vector', 'halfvec', 'bit', or 'none'.
create or replace function sheratan_private.ann_kind() returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce((
    select case when o.opcname like 'halfvec%' then 'halfvec' when o.opcname like 'bit%' then 'bit' else 'vector' end
      from pg_index x
      join pg_opclass o on o.oid = x.indclass[0]
     where x.indexrelid = to_regclass('sheratan.document_chunks_embedding_idx')
  ), 'none')
$$;
comment on function sheratan_private.ann_kind() is
  'What the ANN index (document_chunks_embedding_idx) is built on: vector, halfvec, bit (binary quantized), or none.';

-- The distance between c.embedding and `arg` as the ANN index orders by it.
create or replace function sheratan_private.ann_distance_sql(arg text) returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select case sheratan_private.ann_kind()
    when 'halfvec' then format('(c.embedding::halfvec(%1$s) <=> %2$s::halfvec(%1$s))', a.atttypmod, arg)
    when 'bit' then format('(binary_quantize(c.embedding)::bit(%1$s) <~> binary_quantize(%2$s))', a.atttypmod, arg)
    else format('(c.embedding <=> %s)', arg) end
    from pg_attribute a
   where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding'
$$;

comment on function sheratan_private.ann_distance_sql(text) is
  'SQL for the cosine distance between c.embedding and an argument, in the form the ANN index serves.';

-- With a binary index the query takes ANN_RERANK_FACTOR × limit candidates
-- (at least 40) in Hamming order and keeps the nearest by exact distance.
create or replace function sheratan_private.nearest_sql(
  filter jsonb, has_threshold boolean, excludes_chunk boolean, excludes_document boolean
) returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  with q as (
    select 'select c.id, c.document_id, c.embedding <=> $1 as distance from sheratan.document_chunks c where c.embedding is not null'
      || sheratan_private.chunk_filter_sql(filter)
      || case when has_threshold then ' and (c.embedding <=> $1) <= $8' else '' end
      || case when excludes_chunk then ' and c.id <> $10' else '' end
      || case when excludes_document then ' and c.document_id <> $11' else '' end
      || ' order by ' || sheratan_private.ann_distance_sql('$1') as body
  )
  select case when sheratan_private.ann_kind() = 'bit'
    then 'select r.* from (' || q.body
         || ' limit greatest(40, $2 * coalesce(nullif(current_setting(''sheratan.ann_rerank_factor'', true), '''')::integer, 10))) r'
         || ' order by r.distance limit $2'
    else q.body || ' limit $2' end
    from q
$$;

revoke all on function sheratan_private.ann_kind() from public;
revoke all on function sheratan_private.ann_distance_sql(text) from public;
grant execute on function sheratan_private.ann_kind(), sheratan_private.ann_distance_sql(text) to sheratan_app, sheratan_readonly;

create or replace function sheratan.search_document_chunks(
  embedding vector,
  first integer default 10,
  "offset" integer default 0,
  min_similarity double precision default null,
  filter jsonb default null,
  query_text text default null,
  max_per_document integer default null,
  mmr_lambda double precision default null,
  mmr_candidates integer default null
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
  diversify boolean := mmr_lambda is not null or mmr_candidates is not null;
  pool integer;
  ids uuid[];
  dists double precision[];
begin
  if q is null then
    raise exception 'embedding is required' using errcode = '22023';
  end if;
  perform sheratan_private.assert_search_limits(k, skip);
  pool := k + skip;
  if diversify then
    if coalesce(mmr_lambda, 0.5) not between 0 and 1 then
      raise exception 'diversity.lambda must be between 0 and 1, not %', mmr_lambda using errcode = '22023';
    end if;
    if mmr_candidates is not null and mmr_candidates not between k + skip and 1000 then
      raise exception 'diversity.candidates must be between first + offset (%) and 1000, not %', k + skip, mmr_candidates
        using errcode = '22023';
    end if;
    pool := coalesce(mmr_candidates, least(greatest(4 * (k + skip), 20), 1000));
  end if;

  -- (The static query orders by `embedding <=> q`, which only an index on the vector itself serves.)
  if f = '{}'::jsonb and min_similarity is null and max_per_document is null and not diversify
     and sheratan_private.ann_kind() = 'vector' then
    select coalesce(array_agg(h.id order by h.distance, h.id), '{}'), coalesce(array_agg(h.distance order by h.distance, h.id), '{}')
      into ids, dists
      from (select c.id, c.embedding <=> q as distance
              from sheratan.document_chunks c
             where c.embedding is not null
             order by c.embedding <=> q
             limit k + skip) h;
  else
    select coalesce(array_agg(n.id order by n.distance, n.id), '{}'), coalesce(array_agg(n.distance order by n.distance, n.id), '{}')
      into ids, dists
      from sheratan_private.nearest_chunks(q, pool, f, 1 - min_similarity, max_per_document) n;
  end if;
  if diversify then
    ids := sheratan_private.mmr_order(ids, q, coalesce(mmr_lambda, 0.5), k + skip);
    dists := null;
  end if;
  ids := ids[skip + 1:];

  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object(
      'offset', "offset", 'minSimilarity', min_similarity, 'maxPerDocument', max_per_document,
      'diversity', case when diversify then jsonb_build_object('lambda', coalesce(mmr_lambda, 0.5), 'candidates', pool) end)),
    cardinality(ids),
    case when dists is not null then 1 - dists[skip + 1] else (select 1 - (c.embedding <=> q) from sheratan.document_chunks c where c.id = ids[1]) end,
    extract(epoch from clock_timestamp() - started) * 1000
  );
  return query
    select c.* from unnest(ids) with ordinality as u(id, i)
      join sheratan.document_chunks c on c.id = u.id
     order by u.i;
end;
$$;
