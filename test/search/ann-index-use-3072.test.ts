// Searches over 3072-dimension embeddings use the ANN index of every kind, as
// the caller under RLS, read from idx_scan after real GraphQL searches
// (test/support/ann-index-use.ts), on a table where the index beats an exact
// scan (bench/README.md, "Where the ANN index wins").
import { annIndexUseSuite } from '../support/ann-index-use.ts';

annIndexUseSuite(3072, 1000);
