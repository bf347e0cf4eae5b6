--! Previous: sha1:0bd58e3c6593d2d9f4eb63e800636cdc4244451d
--! Hash: sha1:431069b0948eeb586332c2b62310947e5d17c96d
--! Message: vector search

-- SPEC §4/§6. Idempotent, so `db:watch` can re-run it.

drop function if exists sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text);
drop function if exists sheratan.ingest_document(text, text, text, jsonb, sheratan.chunk[]);
drop function if exists sheratan.replace_document_chunks(uuid, sheratan.chunk[]);
drop function if exists sheratan_private.search_sql(jsonb, boolean);
drop function if exists sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision);
drop function if exists sheratan_private.insert_chunks(uuid, sheratan.chunk[]);
drop function if exists sheratan_private.assert_embedding(vector);
drop type if exists sheratan.document_chunk_match;
drop type if exists sheratan.chunk;

create type sheratan.document_chunk_match as (
  chunk_id uuid,
  similarity double precision,
  distance double precision
);
comment on type sheratan.document_chunk_match is 'One result of a similarity search.';
comment on column sheratan.document_chunk_match.chunk_id is 'The matching chunk.';
comment on column sheratan.document_chunk_match.similarity is 'Cosine similarity to the query: 1 − distance (1 is identical).';
comment on column sheratan.document_chunk_match.distance is 'Cosine distance to the query (`<=>`), from 0 to 2.';

create type sheratan.chunk as (
  content text,
  embedding vector,
  chunk_index integer,
  metadata jsonb,
  token_count integer
);
comment on type sheratan.chunk is 'A chunk to store with `ingestDocument` or `replaceDocumentChunks`.';
comment on column sheratan.chunk.content is 'The text of the chunk.';
comment on column sheratan.chunk.embedding is 'Its embedding vector (VECTOR_DIMENSION numbers).';
comment on column sheratan.chunk.chunk_index is 'Its position in the document; defaults to its position in the list.';
comment on column sheratan.chunk.metadata is 'Free-form JSON object describing the chunk.';
comment on column sheratan.chunk.token_count is 'Number of tokens in the chunk.';

-- Cosine distance is undefined for the zero vector; any other malformed
-- vector is rejected by the vector type itself (dimensions, NaN, infinity).
create function sheratan_private.assert_embedding(v vector) returns vector
  language plpgsql immutable
  set search_path = pg_catalog, public, pg_temp
as $$
begin
  if v is not null and vector_norm(v) = 0 then
    raise exception 'the zero vector has no cosine similarity; embeddings must have at least one non-zero value'
      using errcode = '22023';
  end if;
  return v;
end;
$$;
comment on function sheratan_private.assert_embedding(vector) is 'Rejects the zero vector (cosine distance is undefined for it).';
revoke all on function sheratan_private.assert_embedding(vector) from public;
grant execute on function sheratan_private.assert_embedding(vector) to sheratan_app, sheratan_readonly;

alter table sheratan.document_chunks drop constraint if exists document_chunks_embedding_not_zero;
alter table sheratan.document_chunks add constraint document_chunks_embedding_not_zero
  check (embedding is null or vector_norm(embedding) > 0);

-- Search analytics are written only here, as the owner, with the caller's claims.
create function sheratan_private.log_search(
  query_text text, k integer, filters jsonb, result_count integer, top_similarity double precision, latency_ms double precision
) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into sheratan.search_logs (query_text, k, filters, result_count, top_similarity, latency_ms, user_id, tenant)
  values (query_text, k, coalesce(filters, '{}'::jsonb), result_count, top_similarity, latency_ms,
          sheratan_private.current_user_id(), sheratan_private.current_tenant());
exception when read_only_sql_transaction then
  null; -- searching a read replica: analytics are skipped, the search is not
end;
$$;
comment on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision) is 'Appends one search_logs row for the current caller.';
revoke all on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision) from public;
grant execute on function sheratan_private.log_search(text, integer, jsonb, integer, double precision, double precision) to sheratan_app, sheratan_readonly;

-- The search query: `order by embedding <=> $1 limit $2`, the shape the
-- HNSW/IVFFlat index serves, with only the filters actually given. Parameters:
-- $1 query vector, $2 limit, $3 document ids, $4 sources, $5 metadata,
-- $6 created after, $7 created before, $8 max distance. Run with EXECUTE, so
-- every call is planned with its real values. The sources filter is an
-- array built once (an InitPlan), not a semi-join, so it can ride on the
-- ordered index scan.
create function sheratan_private.search_sql(filter jsonb, has_threshold boolean) returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select 'select c.id, c.embedding <=> $1 as distance from sheratan.document_chunks c where c.embedding is not null'
    || case when filter ? 'documentIds' then ' and c.document_id = any ($3)' else '' end
    || case when filter ? 'sources' then ' and c.document_id = any (array(select d.id from sheratan.documents d where d.source = any ($4)))' else '' end
    || case when filter ? 'metadata' then ' and c.metadata @> $5' else '' end
    || case when filter ? 'createdAfter' then ' and c.created_at >= $6' else '' end
    || case when filter ? 'createdBefore' then ' and c.created_at < $7' else '' end
    || case when has_threshold then ' and (c.embedding <=> $1) <= $8' else '' end
    || ' order by c.embedding <=> $1 limit $2'
$$;
comment on function sheratan_private.search_sql(jsonb, boolean) is 'The SQL text of a similarity search with the given filters (see search_document_chunks).';
revoke all on function sheratan_private.search_sql(jsonb, boolean) from public;
grant execute on function sheratan_private.search_sql(jsonb, boolean) to sheratan_app, sheratan_readonly;

-- Nearest chunks by cosine distance, within the caller's tenant (security
-- invoker: RLS applies). pgvector >= 0.8 iterative scans (set per request by
-- the gateway) keep a filtered search scanning until it has its k results.
create function sheratan.search_document_chunks(
  embedding vector,
  first integer default 10,
  "offset" integer default 0,
  min_similarity double precision default null,
  filter jsonb default null,
  query_text text default null
) returns setof sheratan.document_chunk_match
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
  ids := ids[skip + 1:];
  dists := dists[skip + 1:];

  perform sheratan_private.log_search(
    query_text, k,
    f || jsonb_strip_nulls(jsonb_build_object('offset', "offset", 'minSimilarity', min_similarity)),
    cardinality(ids), 1 - dists[1],
    extract(epoch from clock_timestamp() - started) * 1000
  );
  return query
    select u.id, 1 - u.d, u.d from unnest(ids, dists) with ordinality as u(id, d, i) order by u.i;
end;
$$;
comment on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) is
  E'@behavior -*\nSimilarity search over the caller''s chunks; exposed as `Query.searchDocumentChunks` by a plugin.';
revoke all on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) from public;
grant execute on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text) to sheratan_app, sheratan_readonly;

-- Inserts the chunks of one document; shared by ingest and re-embedding.
create function sheratan_private.insert_chunks(doc_id uuid, chunks sheratan.chunk[]) returns void
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
begin
  insert into sheratan.document_chunks (document_id, chunk_index, content, embedding, metadata, token_count)
  select doc_id,
         coalesce(c.chunk_index, (c.i - 1)::integer),
         c.content,
         sheratan_private.assert_embedding(c.embedding),
         coalesce(c.metadata, '{}'::jsonb),
         c.token_count
    from unnest(chunks) with ordinality as c(content, embedding, chunk_index, metadata, token_count, i);
end;
$$;
revoke all on function sheratan_private.insert_chunks(uuid, sheratan.chunk[]) from public;
grant execute on function sheratan_private.insert_chunks(uuid, sheratan.chunk[]) to sheratan_app;

create function sheratan.ingest_document(
  title text,
  content text default '',
  source text default null,
  metadata jsonb default '{}',
  chunks sheratan.chunk[] default '{}'
) returns sheratan.documents
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  doc sheratan.documents;
begin
  insert into sheratan.documents (title, content, source, metadata)
  values (title, coalesce(content, ''), source, coalesce(metadata, '{}'::jsonb))
  returning * into doc;
  perform sheratan_private.insert_chunks(doc.id, chunks);
  return doc;
end;
$$;
comment on function sheratan.ingest_document(text, text, text, jsonb, sheratan.chunk[]) is
  E'@resultFieldName document\nStores a document and its chunks in one transaction: any bad chunk stores nothing.';
revoke all on function sheratan.ingest_document(text, text, text, jsonb, sheratan.chunk[]) from public;
grant execute on function sheratan.ingest_document(text, text, text, jsonb, sheratan.chunk[]) to sheratan_app;

create function sheratan.replace_document_chunks(document_id uuid, chunks sheratan.chunk[]) returns sheratan.documents
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  doc sheratan.documents;
begin
  -- Touching the row locks it and bumps updated_at (the timestamps trigger).
  update sheratan.documents d set title = d.title where d.id = replace_document_chunks.document_id returning * into doc;
  if doc.id is null then
    raise exception 'no document % in this tenant', replace_document_chunks.document_id using errcode = '22023';
  end if;
  delete from sheratan.document_chunks c where c.document_id = doc.id;
  perform sheratan_private.insert_chunks(doc.id, chunks);
  return doc;
end;
$$;
comment on function sheratan.replace_document_chunks(uuid, sheratan.chunk[]) is
  E'@resultFieldName document\nReplaces all chunks of a document (e.g. after re-embedding) in one transaction.';
revoke all on function sheratan.replace_document_chunks(uuid, sheratan.chunk[]) from public;
grant execute on function sheratan.replace_document_chunks(uuid, sheratan.chunk[]) to sheratan_app;

-- Vectors are searched by similarity, not sorted, compared for equality, grouped or aggregated.
comment on column sheratan.document_chunks.embedding is
  E'@behavior -orderBy -filterBy -attribute:groupBy -attribute:aggregate -attribute:aggregate:orderBy\nThe chunk''s embedding vector, compared by cosine distance.';

-- `chunk { document { … } }` and `document { chunks { … } }` read as the spec words them.
comment on constraint document_chunks_document_id_fkey on sheratan.document_chunks is
  E'@fieldName document\n@foreignFieldName chunks\nThe document a chunk belongs to.';
