--! Previous: sha1:b5e54c245b0ed8dfd70c0f984baa36c95c5035ec
--! Hash: sha1:d81c1c32c7aba8f7553299bee72212e71bbf2d4e
--! Message: Retrieval quality: full-text column, hybrid search, MMR, per-document caps, more like this

-- Retrieval quality (issue 9): full-text search on chunk content, hybrid
-- search fused by reciprocal rank, maximal-marginal-relevance re-ranking,
-- at most N chunks per document, and "more like this" for chunks and
-- documents. Every entry point is security invoker (RLS scopes it to the
-- caller's tenant) and records one search_logs row. Idempotent.

drop function if exists sheratan.similar_documents(uuid, integer);
drop function if exists sheratan.similar_chunks(uuid, integer, jsonb);
drop function if exists sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer);
drop function if exists sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer);
drop function if exists sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text);
drop function if exists sheratan_private.mmr_order(uuid[], vector, double precision, integer);
drop function if exists sheratan_private.text_matches(tsquery, integer, jsonb);
drop function if exists sheratan_private.nearest_chunks(vector, integer, jsonb, double precision, integer, uuid, uuid);
drop function if exists sheratan_private.nearest_sql(jsonb, boolean, boolean, boolean);
drop function if exists sheratan_private.chunk_filter_sql(jsonb);
drop function if exists sheratan_private.search_sql(jsonb, boolean);
drop function if exists sheratan_private.assert_search_limits(integer, integer);

--------------------------------------------------------------------------------
-- Full text. The configuration (TEXT_SEARCH_CONFIG, default english) is fixed
-- when the migration runs: the column and every query must agree on it for
-- the GIN index to serve the query.
alter table sheratan.document_chunks drop column if exists content_search;
alter table sheratan.document_chunks add column content_search tsvector
  generated always as (to_tsvector(':TEXT_SEARCH_CONFIG', content)) stored;
comment on column sheratan.document_chunks.content_search is
  E'@behavior -*\nThe chunk''s content as a text-search document (TEXT_SEARCH_CONFIG), for hybrid search.';
create index document_chunks_content_search_idx on sheratan.document_chunks using gin (content_search);

--------------------------------------------------------------------------------
create function sheratan_private.assert_search_limits(k integer, skip integer) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if k < 1 then
    raise exception 'first must be at least 1, not %', k using errcode = '22023';
  end if;
  if skip < 0 then
    raise exception 'offset must not be negative, not %', skip using errcode = '22023';
  end if;
end;
$$;
comment on function sheratan_private.assert_search_limits(integer, integer) is 'Rejects a page size below 1 or a negative offset.';

-- The conditions of a search filter, as SQL over chunk alias `c`, with only
-- the filters actually given. Parameters of every search statement:
-- $1 query vector, $2 limit, $3 document ids, $4 sources, $5 metadata,
-- $6 created after, $7 created before, $8 max distance, $9 text query,
-- $10 chunk to leave out, $11 document to leave out, $12 per-document cap. The sources filter is an
-- array built once (an InitPlan), not a semi-join, so it can ride on an
-- ordered index scan.
create function sheratan_private.chunk_filter_sql(filter jsonb) returns text
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if filter ? 'metadata' and jsonb_typeof(filter -> 'metadata') <> 'object' then
    raise exception 'filter.metadata must be a JSON object' using errcode = '22023';
  end if;
  return ''
    || case when filter ? 'documentIds' then ' and c.document_id = any ($3)' else '' end
    || case when filter ? 'sources' then ' and c.document_id = any (array(select d.id from sheratan.documents d where d.source = any ($4)))' else '' end
    || case when filter ? 'metadata' then ' and c.metadata @> $5' else '' end
    || case when filter ? 'createdAfter' then ' and c.created_at >= $6' else '' end
    || case when filter ? 'createdBefore' then ' and c.created_at < $7' else '' end;
end;
$$;
comment on function sheratan_private.chunk_filter_sql(jsonb) is 'The SQL conditions of a search filter (see nearest_chunks for its parameters).';

-- The SQL of a nearest-chunks query: `order by embedding <=> $1 limit $2`,
-- the shape the HNSW/IVFFlat index serves, with only the conditions given.
create function sheratan_private.nearest_sql(
  filter jsonb, has_threshold boolean, excludes_chunk boolean, excludes_document boolean
) returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select 'select c.id, c.document_id, c.embedding <=> $1 as distance from sheratan.document_chunks c where c.embedding is not null'
    || sheratan_private.chunk_filter_sql(filter)
    || case when has_threshold then ' and (c.embedding <=> $1) <= $8' else '' end
    || case when excludes_chunk then ' and c.id <> $10' else '' end
    || case when excludes_document then ' and c.document_id <> $11' else '' end
    || ' order by c.embedding <=> $1 limit $2'
$$;
comment on function sheratan_private.nearest_sql(jsonb, boolean, boolean, boolean) is
  'The SQL text of a nearest-chunks query with the given conditions (see chunk_filter_sql for its parameters).';

-- The chunks nearest to q, nearest first (nearest_sql). With per_document, at most that
-- many chunks of any one document: the nearest candidates are fetched in
-- growing batches until `lim` survive the cap or none are left.
create function sheratan_private.nearest_chunks(
  q vector,
  lim integer,
  filter jsonb,
  max_distance double precision default null,
  per_document integer default null,
  exclude_chunk uuid default null,
  exclude_document uuid default null
) returns table (id uuid, document_id uuid, distance double precision)
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  f jsonb := coalesce(filter, '{}'::jsonb);
  base text := sheratan_private.nearest_sql(f, max_distance is not null, exclude_chunk is not null, exclude_document is not null);
  document_ids uuid[] := (select array_agg(x::uuid) from jsonb_array_elements_text(f -> 'documentIds') x);
  sources text[] := (select array_agg(x) from jsonb_array_elements_text(f -> 'sources') x);
  batch integer := lim;
  fetched integer;
  ids uuid[];
  docs uuid[];
  dists double precision[];
begin
  if per_document is not null and per_document < 1 then
    raise exception 'maxPerDocument must be at least 1, not %', per_document using errcode = '22023';
  end if;
  if per_document is null then
    return query execute base
      using q, lim, document_ids, sources, f -> 'metadata', (f ->> 'createdAfter')::timestamptz,
            (f ->> 'createdBefore')::timestamptz, max_distance, null::tsquery, exclude_chunk, exclude_document;
    return;
  end if;
  loop
    -- The nearest `batch` candidates, then the per-document cap over them.
    execute 'select coalesce(array_agg(g.id order by g.distance, g.id) filter (where g.n <= $12), ''{}''),'
            || ' coalesce(array_agg(g.document_id order by g.distance, g.id) filter (where g.n <= $12), ''{}''),'
            || ' coalesce(array_agg(g.distance order by g.distance, g.id) filter (where g.n <= $12), ''{}''), count(*)'
            || ' from (select h.*, row_number() over (partition by h.document_id order by h.distance, h.id) as n from ('
            || base || ') h) g'
      into ids, docs, dists, fetched
      using q, batch, document_ids, sources, f -> 'metadata', (f ->> 'createdAfter')::timestamptz,
            (f ->> 'createdBefore')::timestamptz, max_distance, null::tsquery, exclude_chunk, exclude_document,
            per_document;
    exit when cardinality(ids) >= lim or fetched < batch;
    batch := batch * 4;
  end loop;
  return query
    select u.id, u.document_id, u.distance
      from unnest(ids, docs, dists) with ordinality as u(id, document_id, distance, i)
     where u.i <= lim order by u.i;
end;
$$;
comment on function sheratan_private.nearest_chunks(vector, integer, jsonb, double precision, integer, uuid, uuid) is
  'The caller''s chunks nearest to a vector, nearest first, with filters, a distance limit, a per-document cap and exclusions.';

-- The caller's chunks matching a text query, best first by `ts_rank_cd`
-- (ties by id), through the GIN index on content_search.
create function sheratan_private.text_matches(tsq tsquery, lim integer, filter jsonb)
  returns table (id uuid, document_id uuid, score double precision)
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  f jsonb := coalesce(filter, '{}'::jsonb);
begin
  return query execute
    'select c.id, c.document_id, ts_rank_cd(c.content_search, $9)::double precision as score'
    || ' from sheratan.document_chunks c where c.content_search @@ $9'
    || sheratan_private.chunk_filter_sql(f)
    || ' order by score desc, c.id limit $2'
    using null::vector, lim,
          (select array_agg(x::uuid) from jsonb_array_elements_text(f -> 'documentIds') x),
          (select array_agg(x) from jsonb_array_elements_text(f -> 'sources') x),
          f -> 'metadata', (f ->> 'createdAfter')::timestamptz, (f ->> 'createdBefore')::timestamptz,
          null::double precision, tsq, null::uuid, null::uuid;
end;
$$;
comment on function sheratan_private.text_matches(tsquery, integer, jsonb) is
  'The caller''s chunks matching a text query, best first by ts_rank_cd.';

-- Maximal marginal relevance (Carbonell & Goldstein, 1998): from candidates
-- (ordered by relevance), repeatedly take the one maximising
-- lambda * sim(query, c) - (1 - lambda) * max sim(c, already taken), so
-- near-duplicates of what is already taken fall back. Ties go to the more
-- relevant candidate. Similarity is cosine similarity (1 - `<=>`).
create function sheratan_private.mmr_order(candidates uuid[], q vector, lambda double precision, k integer)
  returns uuid[]
  language plpgsql stable
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  embeddings vector[];
  relevance double precision[];
  novelty double precision[];
  taken boolean[];
  chosen uuid[] := '{}';
  n integer;
  best integer;
  best_score double precision;
  score double precision;
  s double precision;
begin
  select array_agg(c.embedding order by u.i), array_agg(1 - (c.embedding <=> q) order by u.i)
    into embeddings, relevance
    from unnest(candidates) with ordinality as u(id, i)
    join sheratan.document_chunks c on c.id = u.id;
  n := coalesce(cardinality(embeddings), 0);
  if n = 0 then
    return chosen;
  end if;
  novelty := array_fill(null::double precision, array[n]);
  taken := array_fill(false, array[n]);
  for step in 1 .. least(k, n) loop
    best := null;
    for i in 1 .. n loop
      continue when taken[i];
      score := lambda * relevance[i] - (1 - lambda) * coalesce(novelty[i], 0);
      if best is null or score > best_score then
        best := i;
        best_score := score;
      end if;
    end loop;
    taken[best] := true;
    chosen := chosen || candidates[best];
    for i in 1 .. n loop
      continue when taken[i];
      s := 1 - (embeddings[best] <=> embeddings[i]);
      if novelty[i] is null or s > novelty[i] then
        novelty[i] := s;
      end if;
    end loop;
  end loop;
  return chosen;
end;
$$;
comment on function sheratan_private.mmr_order(uuid[], vector, double precision, integer) is
  'Re-ranks candidate chunks by maximal marginal relevance and returns the first k.';

--------------------------------------------------------------------------------
-- Similarity search, now with a per-document cap and MMR re-ranking. A search
-- without filters, threshold, cap or re-ranking (the common case) runs a
-- static query, whose plan is cached per session; the others are planned per
-- call with their real values. Rows come back in result order.
create function sheratan.search_document_chunks(
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

  if f = '{}'::jsonb and min_similarity is null and max_per_document is null and not diversify then
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
comment on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer) is
  E'@behavior -*\nSimilarity search over the caller''s chunks, in result order; exposed as `Query.searchDocumentChunks` by a plugin.';

--------------------------------------------------------------------------------
-- Hybrid search: full-text and vector candidates fused by reciprocal rank
-- (Cormack et al., 2009): score = Σ weight / (rrf_k + rank) over the lists a
-- chunk appears in (ranks from 1). Either query alone works. Ties by id.
create function sheratan.hybrid_search_document_chunks(
  query_text text default null,
  embedding vector default null,
  first integer default 10,
  "offset" integer default 0,
  filter jsonb default null,
  max_per_document integer default null,
  rrf_k integer default 60,
  text_weight double precision default 1,
  vector_weight double precision default 1,
  candidates integer default null
) returns table (
  chunk_id uuid, score double precision, text_rank integer, vector_rank integer,
  text_score double precision, distance double precision
)
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  started timestamptz := clock_timestamp();
  q vector := sheratan_private.assert_embedding(embedding);
  tsq tsquery := case when nullif(btrim(query_text), '') is not null then websearch_to_tsquery(':TEXT_SEARCH_CONFIG', query_text) end;
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  k integer := coalesce(first, 10);
  skip integer := coalesce("offset", 0);
  rk integer := coalesce(rrf_k, 60);
  tw double precision := coalesce(text_weight, 1);
  vw double precision := coalesce(vector_weight, 1);
  pool integer;
  result_ids uuid[];
  top_score double precision;
begin
  if q is null and nullif(btrim(query_text), '') is null then
    raise exception 'give queryText, embedding or both' using errcode = '22023';
  end if;
  perform sheratan_private.assert_search_limits(k, skip);
  if rk < 1 then
    raise exception 'rrfK must be at least 1, not %', rk using errcode = '22023';
  end if;
  if tw < 0 or vw < 0 or tw + vw = 0 or tw = 'NaN' or vw = 'NaN' then
    raise exception 'textWeight and vectorWeight must not be negative, and not both 0 (got % and %)', tw, vw using errcode = '22023';
  end if;
  if max_per_document is not null and max_per_document < 1 then
    raise exception 'maxPerDocument must be at least 1, not %', max_per_document using errcode = '22023';
  end if;
  if candidates is not null and candidates not between k + skip and 1000 then
    raise exception 'candidates must be between first + offset (%) and 1000, not %', k + skip, candidates using errcode = '22023';
  end if;
  pool := coalesce(candidates, least(greatest(4 * (k + skip), 50), 1000));

  return query
    with t as (
      select m.id, m.document_id, m.score, row_number() over (order by m.score desc, m.id)::integer as r
        from sheratan_private.text_matches(tsq, pool, f) m
       where tsq is not null and numnode(tsq) > 0
    ), v as (
      select n.id, n.document_id, row_number() over (order by n.distance, n.id)::integer as r
        from sheratan_private.nearest_chunks(q, pool, f) n
       where q is not null
    ), fused as (
      select coalesce(t.id, v.id) as id, coalesce(t.document_id, v.document_id) as document_id,
             coalesce(tw / (rk + t.r), 0) + coalesce(vw / (rk + v.r), 0) as score,
             t.r as text_rank, v.r as vector_rank, t.score as text_score
        from t full join v on v.id = t.id
    ), capped as (
      select fused.*, row_number() over (partition by fused.document_id order by fused.score desc, fused.id) as n
        from fused
    ), page as (
      select capped.* from capped
       where max_per_document is null or capped.n <= max_per_document
       order by capped.score desc, capped.id
       limit k offset skip
    )
    select p.id, p.score, p.text_rank, p.vector_rank, p.text_score,
           case when q is not null then c.embedding <=> q end
      from page p join sheratan.document_chunks c on c.id = p.id
     order by p.score desc, p.id;

  get diagnostics pool = row_count;
  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object(
      'mode', 'hybrid', 'offset', "offset", 'maxPerDocument', max_per_document, 'rrfK', rk,
      'textWeight', tw, 'vectorWeight', vw, 'candidates', candidates, 'embedding', q is not null)),
    pool, null,
    extract(epoch from clock_timestamp() - started) * 1000
  );
end;
$$;
comment on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer) is
  E'@behavior -*\nHybrid (full-text + vector) search fused by reciprocal rank; exposed as `Query.hybridSearchDocumentChunks` by a plugin.';

--------------------------------------------------------------------------------
-- More like this: the chunks nearest to a chunk (leaving it out), and the
-- documents nearest to a document. A document is compared by the mean of its
-- chunks' embeddings; the other documents are ranked by their chunk nearest
-- to that mean (so the ANN index serves it).
create function sheratan.similar_chunks(chunk_id uuid, first integer default 10, filter jsonb default null)
  returns table (id uuid, distance double precision)
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  started timestamptz := clock_timestamp();
  q vector;
  k integer := coalesce(first, 10);
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  n integer := 0;
begin
  perform sheratan_private.assert_search_limits(k, 0);
  select c.embedding into q from sheratan.document_chunks c where c.id = similar_chunks.chunk_id;
  if q is not null then
    return query select m.id, m.distance from sheratan_private.nearest_chunks(q, k, f, null, null, similar_chunks.chunk_id) m;
    get diagnostics n = row_count;
  end if;
  perform sheratan_private.log_search(
    null, k, f || jsonb_build_object('mode', 'similarChunks', 'chunkId', similar_chunks.chunk_id),
    n, null, extract(epoch from clock_timestamp() - started) * 1000);
end;
$$;
comment on function sheratan.similar_chunks(uuid, integer, jsonb) is
  E'@behavior -*\nThe chunks most similar to a chunk, itself left out; exposed as `DocumentChunk.similarChunks` by a plugin.';

create function sheratan.similar_documents(document_id uuid, first integer default 10)
  returns table (id uuid, distance double precision)
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  started timestamptz := clock_timestamp();
  centroid vector;
  k integer := coalesce(first, 10);
  n integer := 0;
begin
  perform sheratan_private.assert_search_limits(k, 0);
  select avg(c.embedding) into centroid from sheratan.document_chunks c where c.document_id = similar_documents.document_id;
  if centroid is not null and vector_norm(centroid) > 0 then
    return query
      select m.document_id, m.distance
        from sheratan_private.nearest_chunks(centroid, k, null, null, 1, null, similar_documents.document_id) m;
    get diagnostics n = row_count;
  end if;
  perform sheratan_private.log_search(
    null, k, jsonb_build_object('mode', 'similarDocuments', 'documentId', similar_documents.document_id),
    n, null, extract(epoch from clock_timestamp() - started) * 1000);
end;
$$;
comment on function sheratan.similar_documents(uuid, integer) is
  E'@behavior -*\nThe documents most similar to a document, itself left out; exposed as `Document.similarDocuments` by a plugin.';

--------------------------------------------------------------------------------
revoke all on function sheratan_private.assert_search_limits(integer, integer) from public;
revoke all on function sheratan_private.chunk_filter_sql(jsonb) from public;
revoke all on function sheratan_private.nearest_sql(jsonb, boolean, boolean, boolean) from public;
revoke all on function sheratan_private.nearest_chunks(vector, integer, jsonb, double precision, integer, uuid, uuid) from public;
revoke all on function sheratan_private.text_matches(tsquery, integer, jsonb) from public;
revoke all on function sheratan_private.mmr_order(uuid[], vector, double precision, integer) from public;
revoke all on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer) from public;
revoke all on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer) from public;
revoke all on function sheratan.similar_chunks(uuid, integer, jsonb) from public;
revoke all on function sheratan.similar_documents(uuid, integer) from public;
grant execute on function
  sheratan_private.assert_search_limits(integer, integer),
  sheratan_private.chunk_filter_sql(jsonb),
  sheratan_private.nearest_sql(jsonb, boolean, boolean, boolean),
  sheratan_private.nearest_chunks(vector, integer, jsonb, double precision, integer, uuid, uuid),
  sheratan_private.text_matches(tsquery, integer, jsonb),
  sheratan_private.mmr_order(uuid[], vector, double precision, integer),
  sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer),
  sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer),
  sheratan.similar_chunks(uuid, integer, jsonb),
  sheratan.similar_documents(uuid, integer)
  to sheratan_app, sheratan_readonly;
