--! Previous: sha1:26583e53a689d45eb6c44a86d37cf04ff3e032a0
--! Hash: sha1:b36488b49dd5e720eabb30f0b5830e1320dda43b
--! Message: Changing the embedding model without downtime

-- A model switch keeps two embedding columns for a while: the live one,
-- `embedding`, which every search uses, and `embedding_next`, filled with the
-- new model's vectors (storeEmbeddings) while searches go on. The switch
-- renames `embedding_next` to `embedding` (and the old column to
-- `embedding_previous`, kept until it is dropped) in one short transaction;
-- the search functions name `embedding`, so they follow without a change.
-- The owner runs the steps (`npm run embeddings:migrate`); API roles only
-- store vectors and read the progress. Idempotent for `db:watch`.

-- searchDocumentChunks's function returns (id, distance), as the other
-- searches do, instead of document_chunks rows: the statement that calls it
-- then names the table (it joins the rows by id), so it takes the table's
-- lock and is planned afresh after a change to its columns. Returning the
-- table's row type, a statement prepared before a model switch kept the
-- row's columns by position (a search during the switch failed).
drop function if exists sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer);
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
) returns table (id uuid, distance double precision)
  language plpgsql volatile
  -- About `first` rows, not the default 1,000: the join by id then reads the
  -- primary key per row instead of hashing the whole table.
  rows 10
  set search_path = pg_catalog, public, pg_temp
as $$
#variable_conflict use_column
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
  -- The distances are exact (an index on halfvec or bits only chose the candidates).
  return query
    select c.id, c.embedding <=> q from unnest(ids) with ordinality as u(id, i)
      join sheratan.document_chunks c on c.id = u.id
     order by u.i;
end;
$$;
comment on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer) is
  E'@behavior -*\nSimilarity search over the caller''s chunks: (id, exact cosine distance) in result order; exposed as `Query.searchDocumentChunks` by a plugin.';
revoke all on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer) from public;
grant execute on function sheratan.search_document_chunks(vector, integer, integer, double precision, jsonb, text, integer, double precision, integer)
  to sheratan_app, sheratan_readonly;

-- The other searches return about `first` rows too; with the default estimate
-- (1,000) the statement that joins their rows by id hashed the whole table.
alter function sheratan.hybrid_search_document_chunks(text, vector, integer, integer, jsonb, integer, integer, double precision, double precision, integer) rows 10;
alter function sheratan.similar_chunks(uuid, integer, jsonb) rows 10;
alter function sheratan.similar_documents(uuid, integer) rows 10;

create table if not exists sheratan.embedding_models (
  name text primary key check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
  dimension integer not null check (dimension between 1 and 4000),
  state text not null check (state in ('live', 'next', 'previous')),
  created_at timestamptz not null default now(),
  switched_at timestamptz
);
create unique index if not exists embedding_models_one_per_state on sheratan.embedding_models (state);
comment on table sheratan.embedding_models is
  E'@behavior -*\nThe embedding models of a model switch (npm run embeddings:migrate): the live one, the one being migrated to (next), and the one switched away from (previous) until it is dropped.';
comment on column sheratan.embedding_models.name is 'The model''s name, as given to embeddings:migrate (e.g. mpnet).';
comment on column sheratan.embedding_models.dimension is 'Its embeddings'' dimension.';
comment on column sheratan.embedding_models.state is 'live (searched: document_chunks.embedding), next (being stored: storeEmbeddings) or previous (switched away from, kept until dropped).';
comment on column sheratan.embedding_models.created_at is 'When the model was recorded.';
comment on column sheratan.embedding_models.switched_at is 'When it became live, or stopped being live.';

alter table sheratan.embedding_models enable row level security;
drop policy if exists select_all on sheratan.embedding_models;
-- Not tenant data: which model is live is the same for every tenant.
create policy select_all on sheratan.embedding_models for select to sheratan_app, sheratan_readonly using (true);
grant select on sheratan.embedding_models to sheratan_app, sheratan_readonly;

drop function if exists sheratan.store_embeddings(text, sheratan.chunk_embedding[]);
drop function if exists sheratan.embedding_migration();
drop function if exists sheratan_private.start_embedding_migration(text, integer, text);
drop function if exists sheratan_private.switch_embedding_model(boolean);
drop function if exists sheratan_private.drop_embedding_column(text);
drop type if exists sheratan.chunk_embedding;
drop type if exists sheratan.embedding_migration;

create type sheratan.chunk_embedding as (chunk_id uuid, embedding vector);
comment on type sheratan.chunk_embedding is 'A chunk and its embedding by the model being migrated to (storeEmbeddings).';
comment on column sheratan.chunk_embedding.chunk_id is 'The chunk (its rowId).';
comment on column sheratan.chunk_embedding.embedding is 'Its embedding by the new model, of the new model''s dimension.';

create type sheratan.embedding_migration as (
  model text,
  dimension integer,
  live_model text,
  live_dimension integer,
  embedded bigint,
  missing bigint
);
comment on type sheratan.embedding_migration is 'The progress of a model switch, over the chunks the caller can see.';
comment on column sheratan.embedding_migration.model is 'The model being migrated to.';
comment on column sheratan.embedding_migration.dimension is 'The new model''s dimension.';
comment on column sheratan.embedding_migration.live_model is 'The model searches use until the switch.';
comment on column sheratan.embedding_migration.live_dimension is 'The live model''s dimension.';
comment on column sheratan.embedding_migration.embedded is 'Chunks that have their new embedding.';
comment on column sheratan.embedding_migration.missing is 'Chunks with a live embedding but no new one yet: the switch waits for these.';

-- Every search and write of the live embedding checks its argument here:
-- after a switch a query of the old model's dimension gets the same message
-- as a write, naming both numbers, instead of pgvector's "different vector
-- dimensions". (The new column's writes are checked by its type and its
-- check constraint.)
create or replace function sheratan_private.assert_embedding(v vector) returns vector
  language plpgsql stable
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  live integer;
begin
  if v is null then
    return null;
  end if;
  live := (select a.atttypmod from pg_attribute a where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding');
  if vector_dims(v) <> live then
    raise exception 'expected % dimensions, not %', live, vector_dims(v) using errcode = '22000';
  end if;
  if vector_norm(v) = 0 then
    raise exception 'the zero vector has no cosine similarity; embeddings must have at least one non-zero value'
      using errcode = '22023';
  end if;
  return v;
end;
$$;
comment on function sheratan_private.assert_embedding(vector) is
  'Rejects a vector of another dimension than the live embedding''s, and the zero vector (cosine distance is undefined for it).';

-- Stores new-model vectors as the caller, under row-level security: a chunk
-- of another tenant is "not found", and then nothing is stored.
create function sheratan.store_embeddings(model text, embeddings sheratan.chunk_embedding[]) returns integer
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  next_model text := (select m.name from sheratan.embedding_models m where m.state = 'next');
  given integer := coalesce(cardinality(embeddings), 0);
  stored integer;
begin
  if next_model is null then
    raise exception 'no embedding model migration is in progress (start one with npm run embeddings:migrate)'
      using errcode = '55000';
  end if;
  if model is distinct from next_model then
    raise exception 'the model being migrated to is %, not %', next_model, model using errcode = '22023';
  end if;
  if given = 0 or given > 1000 then
    raise exception 'give 1 to 1000 embeddings at a time, not %', given using errcode = '22023';
  end if;
  if exists (select 1 from unnest(embeddings) e where e.chunk_id is null or e.embedding is null) then
    raise exception 'every item needs a chunkId and an embedding' using errcode = '22023';
  end if;
  if (select count(distinct e.chunk_id) from unnest(embeddings) e) <> given then
    raise exception 'each chunk may appear once' using errcode = '22023';
  end if;
  update sheratan.document_chunks c
     set embedding_next = e.embedding
    from unnest(embeddings) e
   where c.id = e.chunk_id;
  get diagnostics stored = row_count;
  if stored <> given then
    raise exception '% of the % chunks were not found; nothing was stored', given - stored, given using errcode = '22023';
  end if;
  return stored;
end;
$$;
comment on function sheratan.store_embeddings(text, sheratan.chunk_embedding[]) is
  E'@resultFieldName stored\nStores chunks'' embeddings by the model being migrated to (npm run embeddings:migrate), 1 to 1000 at a time; returns how many. All or nothing.';

create function sheratan.embedding_migration() returns sheratan.embedding_migration
  language plpgsql stable
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  result sheratan.embedding_migration;
begin
  select n.name, n.dimension, l.name, l.dimension into result.model, result.dimension, result.live_model, result.live_dimension
    from sheratan.embedding_models n
    left join sheratan.embedding_models l on l.state = 'live'
   where n.state = 'next';
  if result.model is null then
    return null;
  end if;
  -- Dynamic: embedding_next exists only during a migration.
  execute 'select count(*) filter (where embedding_next is not null),
                  count(*) filter (where embedding is not null and embedding_next is null)
             from sheratan.document_chunks'
    into result.embedded, result.missing;
  return result;
end;
$$;
comment on function sheratan.embedding_migration() is
  'The model switch in progress and how far it is, over your chunks; null when none is.';

-- The ANN index for a new column, of the kind the live index is (an empty
-- column builds at once; new vectors are indexed as they are stored).
create function sheratan_private.start_embedding_migration(model text, dimension integer, live_model text) returns void
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  live_dimension integer := (select a.atttypmod from pg_attribute a
                              where a.attrelid = 'sheratan.document_chunks'::regclass and a.attname = 'embedding');
  kind text := sheratan_private.ann_kind();
  indexed text;
begin
  if exists (select 1 from sheratan.embedding_models m where m.state = 'next') then
    raise exception 'a migration to % is already in progress; switch to it, or cancel it',
      (select m.name from sheratan.embedding_models m where m.state = 'next') using errcode = '55000';
  end if;
  if exists (select 1 from sheratan.embedding_models m where m.state = 'previous') then
    raise exception 'the previous model % is still kept; drop it first', (select m.name from sheratan.embedding_models m where m.state = 'previous')
      using errcode = '55000';
  end if;
  if dimension is null or dimension not between 1 and 4000 then
    raise exception 'the dimension must be between 1 and 4000, not %', dimension using errcode = '22023';
  end if;
  if model = live_model then
    raise exception 'the new model needs a name of its own (the live one is %)', live_model using errcode = '22023';
  end if;
  if not exists (select 1 from sheratan.embedding_models m where m.state = 'live') then
    insert into sheratan.embedding_models (name, dimension, state) values (live_model, live_dimension, 'live');
  end if;
  insert into sheratan.embedding_models (name, dimension, state) values (model, dimension, 'next');

  execute format('alter table sheratan.document_chunks add column embedding_next vector(%s)', dimension);
  alter table sheratan.document_chunks add constraint document_chunks_embedding_next_not_zero
    check (embedding_next is null or vector_norm(embedding_next) > 0);
  comment on column sheratan.document_chunks.embedding_next is
    E'@behavior -*\nThe chunk''s embedding by the model being migrated to; becomes `embedding` at the switch.';
  -- The same privileges as the live column, which it becomes.
  grant insert (embedding_next), update (embedding_next) on sheratan.document_chunks to sheratan_app;
  indexed := case
    when kind = 'bit' then format('(binary_quantize(embedding_next)::bit(%s)) bit_hamming_ops', dimension)
    when kind = 'halfvec' or dimension > 2000 then format('(embedding_next::halfvec(%s)) halfvec_cosine_ops', dimension)
    else 'embedding_next vector_cosine_ops' end;
  execute format('create index document_chunks_embedding_next_idx on sheratan.document_chunks using hnsw (%s)', indexed);
end;
$$;
comment on function sheratan_private.start_embedding_migration(text, integer, text) is
  'embeddings:migrate: records the models and adds embedding_next with its ANN index beside the live embedding.';

create function sheratan_private.switch_embedding_model(force boolean) returns bigint
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
declare
  next_model text := (select m.name from sheratan.embedding_models m where m.state = 'next');
  missing bigint;
begin
  if next_model is null then
    raise exception 'no embedding model migration is in progress' using errcode = '55000';
  end if;
  -- The rename takes this lock anyway; taking it first makes the count exact.
  lock table sheratan.document_chunks in access exclusive mode;
  select count(*) into missing from sheratan.document_chunks where embedding is not null and embedding_next is null;
  if missing > 0 and not force then
    raise exception '% chunks have no % embedding yet; store them first (or switch with --force: they then have no embedding, and searches do not find them)',
      missing, next_model using errcode = '55000';
  end if;
  alter table sheratan.document_chunks rename column embedding to embedding_previous;
  alter table sheratan.document_chunks rename column embedding_next to embedding;
  alter index sheratan.document_chunks_embedding_idx rename to document_chunks_embedding_previous_idx;
  alter index sheratan.document_chunks_embedding_next_idx rename to document_chunks_embedding_idx;
  alter table sheratan.document_chunks rename constraint document_chunks_embedding_not_zero to document_chunks_embedding_previous_not_zero;
  alter table sheratan.document_chunks rename constraint document_chunks_embedding_next_not_zero to document_chunks_embedding_not_zero;
  comment on column sheratan.document_chunks.embedding is
    E'@behavior -orderBy -filterBy -attribute:groupBy -attribute:aggregate -attribute:aggregate:orderBy\nThe chunk''s embedding vector, compared by cosine distance.';
  comment on column sheratan.document_chunks.embedding_previous is
    E'@behavior -*\nThe chunk''s embedding by the model switched away from, kept until it is dropped.';
  revoke insert (embedding_previous), update (embedding_previous) on sheratan.document_chunks from sheratan_app;
  update sheratan.embedding_models
     set state = case state when 'live' then 'previous' else 'live' end, switched_at = now()
   where state in ('live', 'next');
  return missing;
end;
$$;
comment on function sheratan_private.switch_embedding_model(boolean) is
  'embeddings:migrate --switch: makes the next model''s column the live embedding, keeping the old one as embedding_previous.';

-- --drop-previous drops embedding_previous; --cancel drops embedding_next.
create function sheratan_private.drop_embedding_column(which text) returns void
  language plpgsql volatile
  set search_path = pg_catalog, public, pg_temp
as $$
begin
  if which not in ('next', 'previous') then
    raise exception 'which must be next or previous, not %', which using errcode = '22023';
  end if;
  if not exists (select 1 from sheratan.embedding_models m where m.state = which) then
    raise exception 'there is no % embedding model', which using errcode = '55000';
  end if;
  execute format('alter table sheratan.document_chunks drop column embedding_%s', which);
  delete from sheratan.embedding_models where state = which;
end;
$$;
comment on function sheratan_private.drop_embedding_column(text) is
  'embeddings:migrate --drop-previous / --cancel: drops the previous or the next model''s column and its index.';

revoke all on function sheratan.store_embeddings(text, sheratan.chunk_embedding[]) from public;
revoke all on function sheratan.embedding_migration() from public;
revoke all on function sheratan_private.start_embedding_migration(text, integer, text) from public;
revoke all on function sheratan_private.switch_embedding_model(boolean) from public;
revoke all on function sheratan_private.drop_embedding_column(text) from public;
grant execute on function sheratan.store_embeddings(text, sheratan.chunk_embedding[]) to sheratan_app;
grant execute on function sheratan.embedding_migration() to sheratan_app, sheratan_readonly;
