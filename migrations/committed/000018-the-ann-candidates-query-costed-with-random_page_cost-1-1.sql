--! Previous: sha1:9f1870f1e00a331b9af11e752b12cefafc6a5594
--! Hash: sha1:e3b0a91eae1592892382d425937cc23c60cd9c6f
--! Message: the ANN candidates query costed with random_page_cost 1.1

-- Enter migration here

-- ---- issue 30 item 6 / issue 31 item 2: the ANN index used wherever it is faster ----
-- The planner's exact-scan estimate counts heap pages and one operator per
-- row; it does not see that each embedding above ~500 dimensions is stored
-- out of line (TOAST) and must be fetched and compared in all its
-- dimensions. At 3,072 dimensions, analyzed, on PostgreSQL 15 + pgvector 0.8
-- it chose the exact scan at 1,000 chunks (163 ms a search) over HNSW
-- (11 ms), its costs 46 against 50 (bench/ann-crossover.ts, bench/README.md).
-- HNSW reads its graph's pages at random, but they are the pages a search
-- store keeps hot: priced as PostgreSQL advises for storage whose random
-- reads cost about as much as sequential ones (random_page_cost = 1.1), the
-- index wins where it is faster. Only the candidates query is costed so; the
-- rest of the database keeps the server's setting.
alter function sheratan_private.nearest_chunks(vector, integer, sheratan_private.chunk_scope) set random_page_cost = 1.1;
