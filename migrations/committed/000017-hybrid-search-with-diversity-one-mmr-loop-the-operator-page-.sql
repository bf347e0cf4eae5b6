--! Previous: sha1:356149f2ce6e9181572dda68e4521c7f7fb2db49
--! Hash: sha1:9f1870f1e00a331b9af11e752b12cefafc6a5594
--! Message: hybrid search with diversity (one MMR loop); the operator page's store-wide aggregates

-- Hybrid search with maximal marginal relevance: hybridSearchDocumentChunks
-- takes `diversity` like searchDocumentChunks. MMR's loop is now written
-- once (sheratan_private.mmr_pick, given each candidate's relevance);
-- mmr_order gives it cosine similarity to the query vector, hybrid search its
-- fused score scaled by the best one. Role names are placeholders
-- (:DATABASE_VISITOR, :DATABASE_READONLY).

create or replace function sheratan_private.mmr_pick(candidates uuid[], relevance double precision[], lambda double precision, k integer)
  returns uuid[]
  language plpgsql stable
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  embeddings vector[];
  novelty double precision[];
  taken boolean[];
  chosen uuid[] := '{}';
  n integer := coalesce(cardinality(candidates), 0);
  best integer;
  best_score double precision;
  score double precision;
  s double precision;
begin
  if n = 0 then
    return chosen;
  end if;
  if cardinality(relevance) is distinct from n then
    raise exception 'mmr_pick needs one relevance per candidate (% candidates, % relevances)', n, cardinality(relevance) using errcode = '22023';
  end if;
  -- A candidate with no embedding (not embedded yet) is never near another.
  select array_agg(c.embedding order by u.i)
    into embeddings
    from unnest(candidates) with ordinality as u(id, i)
    left join sheratan.document_chunks c on c.id = u.id;
  novelty := array_fill(null::double precision, array[n]);
  taken := array_fill(false, array[n]);
  for step in 1 .. least(k, n) loop
    best := null;
    for i in 1 .. n loop
      continue when taken[i];
      score := lambda * coalesce(relevance[i], 0) - (1 - lambda) * coalesce(novelty[i], 0);
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
      if s is not null and (novelty[i] is null or s > novelty[i]) then
        novelty[i] := s;
      end if;
    end loop;
  end loop;
  return chosen;
end;
$$;
comment on function sheratan_private.mmr_pick(uuid[], double precision[], double precision, integer) is
  'Maximal marginal relevance (Carbonell & Goldstein, 1998): from candidate chunks ordered by relevance (one relevance each, 0..1), repeatedly takes the one maximising lambda × relevance − (1 − lambda) × its highest cosine similarity to a chunk already taken; returns the first k. Ties go to the earlier candidate.';

create or replace function sheratan_private.mmr_order(candidates uuid[], q vector, lambda double precision, k integer)
  returns uuid[]
  language sql stable
  set search_path = pg_catalog, public, pg_temp
as $$
  select sheratan_private.mmr_pick(
    candidates,
    array(select 1 - (c.embedding <=> q)
            from unnest(candidates) with ordinality as u(id, i)
            left join sheratan.document_chunks c on c.id = u.id
           order by u.i),
    lambda, k)
$$;
comment on function sheratan_private.mmr_order(uuid[], vector, double precision, integer) is
  'Re-ranks candidate chunks by maximal marginal relevance to the query vector q (relevance: cosine similarity) and returns the first k.';

drop function if exists sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer);
drop function if exists sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer, double precision, integer);
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
  candidates integer default null,
  mmr_lambda double precision default null,
  mmr_candidates integer default null
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
  diversify boolean := mmr_lambda is not null or mmr_candidates is not null;
  pool integer;
  take integer;
  ids uuid[];
  scores double precision[];
  text_ranks integer[];
  vector_ranks integer[];
  text_scores double precision[];
  picked uuid[];
  n integer;
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
  take := k + skip;
  if diversify then
    if coalesce(mmr_lambda, 0.5) not between 0 and 1 then
      raise exception 'diversity.lambda must be between 0 and 1, not %', mmr_lambda using errcode = '22023';
    end if;
    take := sheratan_private.candidate_pool(k, skip, mmr_candidates, 'diversity.candidates', 20);
  end if;

  -- The best `take` fused results (the page, or MMR's candidates), best first.
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
  ), best as (
    select capped.* from capped
     where max_per_document is null or capped.n <= max_per_document
     order by capped.score desc, capped.id
     limit take
  )
  select coalesce(array_agg(b.id order by b.score desc, b.id), '{}'),
         array_agg(b.score order by b.score desc, b.id),
         array_agg(b.text_rank order by b.score desc, b.id),
         array_agg(b.vector_rank order by b.score desc, b.id),
         array_agg(b.text_score order by b.score desc, b.id)
    into ids, scores, text_ranks, vector_ranks, text_scores
    from best b;

  -- MMR weighs relevance against similarity, both 0..1: the fused score is
  -- scaled by the best one.
  picked := case
    when diversify and cardinality(ids) > 0 then
      sheratan_private.mmr_pick(
        ids,
        array(select coalesce(s / nullif(scores[1], 0), 0) from unnest(scores) with ordinality as u(s, i) order by u.i),
        coalesce(mmr_lambda, 0.5), k + skip)
    else ids end;
  picked := coalesce(picked[skip + 1:skip + k], '{}');

  return query
    select u.id, b.score, b.text_rank, b.vector_rank, b.text_score,
           case when q is not null then c.embedding <=> q end
      from unnest(picked) with ordinality as u(id, i)
      join unnest(ids, scores, text_ranks, vector_ranks, text_scores) as b(id, score, text_rank, vector_rank, text_score) on b.id = u.id
      join sheratan.document_chunks c on c.id = u.id
     order by u.i;

  get diagnostics n = row_count;
  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object(
      'mode', 'hybrid', 'offset', "offset", 'maxPerDocument', max_per_document, 'rrfK', rk,
      'textWeight', tw, 'vectorWeight', vw, 'candidates', candidates, 'embedding', q is not null,
      'diversity', case when diversify then jsonb_build_object('lambda', coalesce(mmr_lambda, 0.5), 'candidates', take) end)),
    n, null, started
  );
end;
$$;
comment on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer, double precision, integer) is
  E'@behavior -*\nHybrid (full-text + vector) search fused by reciprocal rank, optionally re-ranked for diversity (MMR over the best fused results, relevance = fused score / best fused score): (id, scores…) in result order; exposed as `Query.hybridSearchDocumentChunks` by a plugin.';

revoke all on function sheratan_private.mmr_pick(uuid[], double precision[], double precision, integer) from public;
revoke all on function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer, double precision, integer) from public;
grant execute on function
  sheratan_private.mmr_pick(uuid[], double precision[], double precision, integer),
  sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer, double precision, integer)
  to :DATABASE_VISITOR, :DATABASE_READONLY;

-- ==========================================================================
-- Issue 27 part 3: the operator page's store-wide analytics (src/admin/data.ts)
-- ==========================================================================
-- /admin shows an operator the whole store: every tenant's searches, sources
-- and zero-result queries, and the embedding backlog. Those are read through
-- these functions and nothing else: security definer (the owner's rights,
-- for all tenants), aggregates over a time window (and the few most frequent
-- zero-result query texts, at most 200 characters each), executable by the
-- gateway's login alone. The gateway calls them on its own login only after
-- the admin token's check (src/admin/auth.ts); an API request, which runs as
-- an API role, cannot call them, and the owner connection never reads tenant
-- data for a web request.
drop function if exists sheratan_private.admin_search_series(timestamptz, integer);
create function sheratan_private.admin_search_series(since timestamptz, bucket_seconds integer)
  returns table (bucket timestamptz, searches bigint, zero_result_searches bigint,
                 p50_latency_ms double precision, p95_latency_ms double precision, p99_latency_ms double precision,
                 mean_result_count double precision)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if bucket_seconds is null or bucket_seconds not between 60 and 604800 then
    raise exception 'bucket_seconds must be between 60 and 604800, not %', bucket_seconds using errcode = '22023';
  end if;
  return query
    select to_timestamp(floor(extract(epoch from l.created_at) / bucket_seconds) * bucket_seconds) as b,
           count(*), count(*) filter (where l.result_count = 0),
           percentile_cont(0.5) within group (order by l.latency_ms),
           percentile_cont(0.95) within group (order by l.latency_ms),
           percentile_cont(0.99) within group (order by l.latency_ms),
           avg(l.result_count)::double precision
      from sheratan.search_logs l
     where l.created_at >= since
     group by b
     order by b;
end;
$$;
comment on function sheratan_private.admin_search_series(timestamptz, integer) is
  'The operator page: searches of every tenant since `since`, per bucket of `bucket_seconds`: how many, how many found nothing, latency percentiles, mean result count.';

drop function if exists sheratan_private.admin_result_counts(timestamptz);
create function sheratan_private.admin_result_counts(since timestamptz)
  returns table (result_count integer, searches bigint)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select l.result_count, count(*) from sheratan.search_logs l
   where l.created_at >= since group by l.result_count order by l.result_count
$$;
comment on function sheratan_private.admin_result_counts(timestamptz) is
  'The operator page: how many searches (every tenant, since `since`) returned each number of results.';

drop function if exists sheratan_private.admin_top_sources(timestamptz, integer);
create function sheratan_private.admin_top_sources(since timestamptz, top integer)
  returns table (source text, searches bigint, zero_result_searches bigint)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select left(s.source, 200), count(*), count(*) filter (where l.result_count = 0)
    from sheratan.search_logs l
    cross join lateral jsonb_array_elements_text(
      case when jsonb_typeof(l.filters -> 'sources') = 'array' then l.filters -> 'sources' else '[]'::jsonb end) s(source)
   where l.created_at >= since
   group by 1 order by 2 desc, 1 limit least(greatest(top, 0), 100)
$$;
comment on function sheratan_private.admin_top_sources(timestamptz, integer) is
  'The operator page: the sources searches (every tenant, since `since`) were limited to most often (at most 100).';

drop function if exists sheratan_private.admin_zero_result_queries(timestamptz, integer);
create function sheratan_private.admin_zero_result_queries(since timestamptz, top integer)
  returns table (tenant text, query_text text, searches bigint, last_at timestamptz)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select l.tenant, left(l.query_text, 200), count(*), max(l.created_at)
    from sheratan.search_logs l
   where l.created_at >= since and l.result_count = 0 and l.query_text is not null
   group by 1, 2 order by 3 desc, 4 desc limit least(greatest(top, 0), 100)
$$;
comment on function sheratan_private.admin_zero_result_queries(timestamptz, integer) is
  'The operator page: the query texts (cut to 200 characters) that found nothing most often since `since`, with their tenant (at most 100).';

drop function if exists sheratan_private.admin_embedding_progress();
create function sheratan_private.admin_embedding_progress()
  returns table (pending_documents bigint, embedded_documents bigint, failed_documents bigint, chunks bigint, embedded_chunks bigint)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select (select count(*) from sheratan.documents d where d.embedding_status = 'pending'),
         (select count(*) from sheratan.documents d where d.embedding_status = 'embedded'),
         (select count(*) from sheratan.documents d where d.embedding_status = 'failed'),
         (select count(*) from sheratan.document_chunks c),
         (select count(c.embedding) from sheratan.document_chunks c)
$$;
comment on function sheratan_private.admin_embedding_progress() is
  'The operator page: documents by embedding status and chunks with an embedding, every tenant (counts only).';

revoke all on function
  sheratan_private.admin_search_series(timestamptz, integer),
  sheratan_private.admin_result_counts(timestamptz),
  sheratan_private.admin_top_sources(timestamptz, integer),
  sheratan_private.admin_zero_result_queries(timestamptz, integer),
  sheratan_private.admin_embedding_progress()
  from public;
grant execute on function
  sheratan_private.admin_search_series(timestamptz, integer),
  sheratan_private.admin_result_counts(timestamptz),
  sheratan_private.admin_top_sources(timestamptz, integer),
  sheratan_private.admin_zero_result_queries(timestamptz, integer),
  sheratan_private.admin_embedding_progress()
  to :DATABASE_AUTHENTICATOR;
-- ==========================================================================
-- End of issue 27 part 3's block
-- ==========================================================================
