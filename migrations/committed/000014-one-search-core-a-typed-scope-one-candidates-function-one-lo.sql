--! Previous: sha1:b36488b49dd5e720eabb30f0b5830e1320dda43b
--! Hash: sha1:54b2eca62837849a626464cad3c9804a61ff97a8
--! Message: one search core: a typed scope, one candidates function, one logging wrapper

--
-- The four searches (search_document_chunks, hybrid_search_document_chunks,
-- similar_chunks, similar_documents) keep their signatures; what they share
-- is now written once:
-- * sheratan_private.chunk_scope: a typed record of what limits the
--   candidates (the filter, the distance bound, the exclusions, the
--   per-document cap), built and checked by the function of the same name.
--   Dynamic SQL takes three parameters with one meaning everywhere:
--   $1 the query (vector or tsquery), $2 the scope, $3 the limit.
-- * sheratan_private.nearest_chunks(q, lim, scope): the vector candidates of
--   every search (the static, plan-cached query when nothing limits them).
-- * sheratan_private.candidate_pool: the check and default of a candidates count;
--   assert_search_limits checks first, offset and the per-document cap.
-- * sheratan_private.log_search(…, started): the latency and the log row.
-- * All four return (id, scores…) in result order (hybrid's chunk_id is id).
-- Role names are placeholders (:DATABASE_VISITOR, :DATABASE_READONLY).

drop function if exists sheratan_private.nearest_chunks(vector, integer, jsonb, double precision, integer, uuid, uuid);
drop function if exists sheratan_private.nearest_sql(jsonb, boolean, boolean, boolean);
drop function if exists sheratan_private.text_matches(tsquery, integer, jsonb);
drop function if exists sheratan_private.chunk_filter_sql(jsonb);
drop type if exists sheratan_private.chunk_scope cascade;

create type sheratan_private.chunk_scope as (
  document_ids uuid[],
  sources text[],
  metadata jsonb,
  created_after timestamptz,
  created_before timestamptz,
  max_distance double precision,
  exclude_chunk uuid,
  exclude_document uuid,
  per_document integer
);
comment on type sheratan_private.chunk_scope is
  'What limits a search''s candidates: the filter (documentIds, sources, metadata, createdAfter, createdBefore), the distance bound, the chunk or document left out and the per-document cap. A null field limits nothing; all null (the record IS NULL) limits nothing at all.';

create function sheratan_private.chunk_scope(
  filter jsonb,
  max_distance double precision default null,
  exclude_chunk uuid default null,
  exclude_document uuid default null,
  per_document integer default null
) returns sheratan_private.chunk_scope
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
begin
  if f ? 'metadata' and jsonb_typeof(f -> 'metadata') <> 'object' then
    raise exception 'filter.metadata must be a JSON object' using errcode = '22023';
  end if;
  -- An empty list matches nothing (not: limits nothing).
  return row(
    case when f ? 'documentIds' then coalesce((select array_agg(x::uuid) from jsonb_array_elements_text(f -> 'documentIds') x), '{}') end,
    case when f ? 'sources' then coalesce((select array_agg(x) from jsonb_array_elements_text(f -> 'sources') x), '{}') end,
    f -> 'metadata',
    (f ->> 'createdAfter')::timestamptz,
    (f ->> 'createdBefore')::timestamptz,
    max_distance, exclude_chunk, exclude_document, per_document
  )::sheratan_private.chunk_scope;
end;
$$;
comment on function sheratan_private.chunk_scope(jsonb, double precision, uuid, uuid, integer) is
  'The typed scope of a search from its GraphQL filter (JSON) and options; rejects a metadata filter that is not an object.';

drop function if exists sheratan_private.assert_search_limits(integer, integer);
create or replace function sheratan_private.assert_search_limits(k integer, skip integer, per_document integer default null) returns void
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
  if per_document is not null and per_document < 1 then
    raise exception 'maxPerDocument must be at least 1, not %', per_document using errcode = '22023';
  end if;
end;
$$;
comment on function sheratan_private.assert_search_limits(integer, integer, integer) is
  'Rejects a page size below 1, a negative offset and a per-document cap below 1.';

create function sheratan_private.scope_sql(scope sheratan_private.chunk_scope) returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select ''
    || case when (scope).document_ids is not null then ' and c.document_id = any (($2).document_ids)' else '' end
    || case when (scope).sources is not null
         then ' and c.document_id = any (array(select d.id from sheratan.documents d where d.source = any (($2).sources)))' else '' end
    || case when (scope).metadata is not null then ' and c.metadata @> ($2).metadata' else '' end
    || case when (scope).created_after is not null then ' and c.created_at >= ($2).created_after' else '' end
    || case when (scope).created_before is not null then ' and c.created_at < ($2).created_before' else '' end
    || case when (scope).exclude_chunk is not null then ' and c.id <> ($2).exclude_chunk' else '' end
    || case when (scope).exclude_document is not null then ' and c.document_id <> ($2).exclude_document' else '' end
$$;
comment on function sheratan_private.scope_sql(sheratan_private.chunk_scope) is
  'The conditions on chunks `c` of a scope, for dynamic SQL whose $2 is that scope; only the fields set appear, so the planner sees the plain query.';

create function sheratan_private.nearest_sql(scope sheratan_private.chunk_scope) returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  with q as (
    select 'select c.id, c.document_id, c.embedding <=> $1 as distance from sheratan.document_chunks c where c.embedding is not null'
      || sheratan_private.scope_sql(scope)
      || case when (scope).max_distance is not null then ' and (c.embedding <=> $1) <= ($2).max_distance' else '' end
      || ' order by ' || sheratan_private.ann_distance_sql('$1') as body
  )
  select case when sheratan_private.ann_kind() = 'bit'
    then 'select r.* from (' || q.body
         || ' limit greatest(40, $3 * coalesce(nullif(current_setting(''sheratan.ann_rerank_factor'', true), '''')::integer, 10))) r'
         || ' order by r.distance limit $3'
    else q.body || ' limit $3' end
    from q
$$;
comment on function sheratan_private.nearest_sql(sheratan_private.chunk_scope) is
  'The nearest-chunks query of a scope ($1 the query vector, $2 the scope, $3 the limit), ordered by the ANN index''s own expression so the index serves it; with a binary index, ANN_RERANK_FACTOR × the limit candidates re-ranked by exact distance.';

create function sheratan_private.nearest_chunks(q vector, lim integer, scope sheratan_private.chunk_scope default null)
  returns table (id uuid, document_id uuid, distance double precision)
  language plpgsql
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  base text;
  batch integer := lim;
  fetched integer;
  ids uuid[];
  docs uuid[];
  dists double precision[];
begin
  -- Nothing limits the candidates: a static query, whose plan is cached. (It
  -- orders by `embedding <=> q`, which only an index on the vector itself serves.)
  if scope is null and sheratan_private.ann_kind() = 'vector' then
    return query
      select c.id, c.document_id, c.embedding <=> q
        from sheratan.document_chunks c
       where c.embedding is not null
       order by c.embedding <=> q
       limit lim;
    return;
  end if;
  base := sheratan_private.nearest_sql(scope);
  if (scope).per_document is null then
    return query execute base using q, scope, lim;
    return;
  end if;
  loop
    -- The nearest `batch` candidates, then the per-document cap over them.
    execute 'select coalesce(array_agg(g.id order by g.distance, g.id) filter (where g.n <= ($2).per_document), ''{}''),'
            || ' coalesce(array_agg(g.document_id order by g.distance, g.id) filter (where g.n <= ($2).per_document), ''{}''),'
            || ' coalesce(array_agg(g.distance order by g.distance, g.id) filter (where g.n <= ($2).per_document), ''{}''), count(*)'
            || ' from (select h.*, row_number() over (partition by h.document_id order by h.distance, h.id) as n from ('
            || base || ') h) g'
      into ids, docs, dists, fetched
      using q, scope, batch;
    exit when cardinality(ids) >= lim or fetched < batch;
    batch := batch * 4;
  end loop;
  return query
    select u.id, u.document_id, u.distance
      from unnest(ids, docs, dists) with ordinality as u(id, document_id, distance, i)
     where u.i <= lim order by u.i;
end;
$$;
comment on function sheratan_private.nearest_chunks(vector, integer, sheratan_private.chunk_scope) is
  'The vector candidates of every search: the caller''s `lim` chunks nearest to `q` within `scope` (RLS applies), nearest first, with exact distances; with a per-document cap, at most that many per document.';

create function sheratan_private.text_matches(tsq tsquery, lim integer, scope sheratan_private.chunk_scope default null)
  returns table (id uuid, document_id uuid, score double precision)
  language plpgsql
  security definer
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  tenant text := sheratan_private.current_tenant();
begin
  if tenant is null then
    return;
  end if;
  return query execute
    'select c.id, c.document_id, ts_rank_cd(c.content_search, $1)::double precision as score'
    || ' from sheratan.document_chunks c where c.tenant = $4 and c.content_search @@ $1'
    || sheratan_private.scope_sql(scope)
    || ' order by score desc, c.id limit $3'
    using tsq, scope, lim, tenant;
end;
$$;
comment on function sheratan_private.text_matches(tsquery, integer, sheratan_private.chunk_scope) is
  'The full-text candidates of hybrid search: the caller''s tenant''s `lim` best chunks for `tsq` within `scope`. Security definer, so the GIN index serves it (RLS''s tenant check, written out as c.tenant = the caller''s tenant).';

create or replace function sheratan_private.candidate_pool(k integer, skip integer, given integer, argument text, floor integer)
  returns integer
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if given is not null and given not between k + skip and 1000 then
    raise exception '% must be between first + offset (%) and 1000, not %', argument, k + skip, given using errcode = '22023';
  end if;
  return coalesce(given, least(greatest(4 * (k + skip), floor), 1000));
end;
$$;
comment on function sheratan_private.candidate_pool(integer, integer, integer, text, integer) is
  'How many candidates a search ranks: `given` (named `argument` in the error), which must lie between first + offset and 1000, or else 4 × (first + offset), at least `floor`, at most 1000.';

drop function if exists sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision);
drop function if exists sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamptz);
create function sheratan_private.log_search(
  query_text text,
  k integer,
  filters jsonb,
  result_count integer,
  top_similarity double precision,
  started timestamptz
) returns void
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.txid_current_if_assigned() is null then
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant)
  values (query_text, k, coalesce(filters, '{}'::jsonb), result_count, top_similarity,
          extract(epoch from clock_timestamp() - started) * 1000,
          sheratan_private.current_user_id(), sheratan_private.current_tenant());
exception when read_only_sql_transaction then
  null; -- searching a read replica: analytics are skipped, the search is not
end;
$$;
comment on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamptz) is
  'Logs one search for the caller (search_logs), its latency measured from `started`. A search that wrote nothing else commits without waiting for the WAL flush; on a read replica nothing is logged.';

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
) returns table (id uuid, distance double precision)
  language plpgsql
  rows 10
  set search_path = pg_catalog, public, pg_temp
as $$
#variable_conflict use_column
declare
  started timestamptz := clock_timestamp();
  q vector := sheratan_private.assert_embedding(embedding);
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  scope sheratan_private.chunk_scope := sheratan_private.chunk_scope(f, 1 - min_similarity, per_document => max_per_document);
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
  perform sheratan_private.assert_search_limits(k, skip, max_per_document);
  pool := k + skip;
  if diversify then
    if coalesce(mmr_lambda, 0.5) not between 0 and 1 then
      raise exception 'diversity.lambda must be between 0 and 1, not %', mmr_lambda using errcode = '22023';
    end if;
    pool := sheratan_private.candidate_pool(k, skip, mmr_candidates, 'diversity.candidates', 20);
  end if;
  select coalesce(array_agg(n.id order by n.distance, n.id), '{}'), coalesce(array_agg(n.distance order by n.distance, n.id), '{}')
    into ids, dists
    from sheratan_private.nearest_chunks(q, pool, scope) n;
  if diversify then
    ids := sheratan_private.mmr_order(ids, q, coalesce(mmr_lambda, 0.5), k + skip);
    dists := null;
  end if;
  ids := ids[skip + 1:];
  dists := dists[skip + 1:];

  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object(
      'offset', "offset", 'minSimilarity', min_similarity, 'maxPerDocument', max_per_document,
      'diversity', case when diversify then jsonb_build_object('lambda', coalesce(mmr_lambda, 0.5), 'candidates', pool) end)),
    cardinality(ids),
    case when dists is not null then 1 - dists[1] else (select 1 - (c.embedding <=> q) from sheratan.document_chunks c where c.id = ids[1]) end,
    started
  );
  -- nearest_chunks' distances are exact (an index on halfvec or bits only
  -- chose the candidates); MMR's order needs them computed for its rows.
  if dists is not null then
    return query select u.id, u.distance from unnest(ids, dists) with ordinality as u(id, distance, i) order by u.i;
  else
    return query
      select c.id, c.embedding <=> q from unnest(ids) with ordinality as u(id, i)
        join sheratan.document_chunks c on c.id = u.id
       order by u.i;
  end if;
end;
$$;

drop function if exists sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer);
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
) returns table (id uuid, score double precision, text_rank integer, vector_rank integer, text_score double precision, distance double precision)
  language plpgsql
  rows 10
  set search_path = pg_catalog, public, pg_temp
as $$
#variable_conflict use_column
declare
  started timestamptz := clock_timestamp();
  q vector := sheratan_private.assert_embedding(embedding);
  tsq tsquery := case when nullif(btrim(query_text), '') is not null then websearch_to_tsquery(':TEXT_SEARCH_CONFIG', query_text) end;
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  scope sheratan_private.chunk_scope := sheratan_private.chunk_scope(f);
  k integer := coalesce(first, 10);
  skip integer := coalesce("offset", 0);
  rk integer := coalesce(rrf_k, 60);
  tw double precision := coalesce(text_weight, 1);
  vw double precision := coalesce(vector_weight, 1);
  pool integer;
begin
  if q is null and nullif(btrim(query_text), '') is null then
    raise exception 'give queryText, embedding or both' using errcode = '22023';
  end if;
  perform sheratan_private.assert_search_limits(k, skip, max_per_document);
  if rk < 1 then
    raise exception 'rrfK must be at least 1, not %', rk using errcode = '22023';
  end if;
  if tw < 0 or vw < 0 or tw + vw = 0 or tw = 'NaN' or vw = 'NaN' then
    raise exception 'textWeight and vectorWeight must not be negative, and not both 0 (got % and %)', tw, vw using errcode = '22023';
  end if;
  pool := sheratan_private.candidate_pool(k, skip, candidates, 'candidates', 50);

  return query
    with t as (
      select m.id, m.document_id, m.score, row_number() over (order by m.score desc, m.id)::integer as r
        from sheratan_private.text_matches(tsq, pool, scope) m
       where tsq is not null and numnode(tsq) > 0
    ), v as (
      select n.id, n.document_id, row_number() over (order by n.distance, n.id)::integer as r
        from sheratan_private.nearest_chunks(q, pool, scope) n
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
    pool, null, started
  );
end;
$$;
comment on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer) is
  E'@behavior -*\nHybrid (full-text + vector) search fused by reciprocal rank: (id, scores…) in result order; exposed as `Query.hybridSearchDocumentChunks` by a plugin.';

create or replace function sheratan.similar_chunks(chunk_id uuid, first integer default 10, filter jsonb default null)
  returns table (id uuid, distance double precision)
  language plpgsql
  rows 10
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  started timestamptz := clock_timestamp();
  q vector;
  k integer := coalesce(first, 10);
  f jsonb := jsonb_strip_nulls(coalesce(filter, '{}'::jsonb));
  scope sheratan_private.chunk_scope := sheratan_private.chunk_scope(f, exclude_chunk => similar_chunks.chunk_id);
  n integer := 0;
begin
  perform sheratan_private.assert_search_limits(k, 0);
  select c.embedding into q from sheratan.document_chunks c where c.id = similar_chunks.chunk_id;
  if q is not null then
    return query select m.id, m.distance from sheratan_private.nearest_chunks(q, k, scope) m;
    get diagnostics n = row_count;
  end if;
  perform sheratan_private.log_search(
    null, k, f || jsonb_build_object('mode', 'similarChunks', 'chunkId', similar_chunks.chunk_id), n, null, started);
end;
$$;

create or replace function sheratan.similar_documents(document_id uuid, first integer default 10)
  returns table (id uuid, distance double precision)
  language plpgsql
  rows 10
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
        from sheratan_private.nearest_chunks(
          centroid, k, sheratan_private.chunk_scope(null, exclude_document => similar_documents.document_id, per_document => 1)) m;
    get diagnostics n = row_count;
  end if;
  perform sheratan_private.log_search(
    null, k, jsonb_build_object('mode', 'similarDocuments', 'documentId', similar_documents.document_id), n, null, started);
end;
$$;

revoke all on function sheratan_private.chunk_scope(jsonb, double precision, uuid, uuid, integer) from public;
revoke all on function sheratan_private.scope_sql(sheratan_private.chunk_scope) from public;
revoke all on function sheratan_private.nearest_sql(sheratan_private.chunk_scope) from public;
revoke all on function sheratan_private.nearest_chunks(vector, integer, sheratan_private.chunk_scope) from public;
revoke all on function sheratan_private.text_matches(tsquery, integer, sheratan_private.chunk_scope) from public;
revoke all on function sheratan_private.candidate_pool(integer, integer, integer, text, integer) from public;
revoke all on function sheratan_private.assert_search_limits(integer, integer, integer) from public;
revoke all on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamptz) from public;
revoke all on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer) from public;
grant execute on function
  sheratan_private.chunk_scope(jsonb, double precision, uuid, uuid, integer),
  sheratan_private.scope_sql(sheratan_private.chunk_scope),
  sheratan_private.nearest_sql(sheratan_private.chunk_scope),
  sheratan_private.nearest_chunks(vector, integer, sheratan_private.chunk_scope),
  sheratan_private.text_matches(tsquery, integer, sheratan_private.chunk_scope),
  sheratan_private.candidate_pool(integer, integer, integer, text, integer),
  sheratan_private.assert_search_limits(integer, integer, integer),
  sheratan_private.log_search(text, integer, jsonb, integer, double precision, timestamptz),
  sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer)
  to :DATABASE_VISITOR, :DATABASE_READONLY;
