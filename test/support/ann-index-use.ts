// The ANN index used by the searches users run (issue 31 item 2, issue 30
// item 6), for one dimension: each test file calls annIndexUseSuite with its
// dimension and a table size at which the index beats an exact scan
// (bench/ann-crossover.ts measures that size; bench/README.md has the figures).
// The data is loaded as an import would be (the index dropped, the rows in
// one statement, the index created again) and nobody runs ANALYZE: keeping
// statistics is the product's job (src/database/auto-analyze.ts). Then, for
// every index kind built the way `npm run index:tune -- --kind` builds it,
// real GraphQL searches as a tenant (RLS applies; the functions' own dynamic
// SQL, their cached static query) must move idx_scan of the index
// (index-scans.ts): no planner setting is changed and no SQL is copied.
import type pg from 'pg';
import { APP_ROLE } from '../../src/config/roles.ts';
import { ANN_INDEX, describeAnnIndex, INDEX_KINDS, ivfflatLists, kindOf, rebuildAnnIndex, specForKind } from '../../src/database/ann-index.ts';
import { applyCurrentMigration } from './current-migration.ts';
import { startHarness, type Harness } from './harness.ts';
import { indexScansDuring } from './index-scans.ts';
import { waitFor } from './processes.ts';
import { rng, randomUnit } from './embeddings.ts';

const TENANT = 'bulk';
const DOCUMENTS = 20;

export function annIndexUseSuite(dim: number, rows: number): void {
  let h: Harness;
  let owner: pg.Client;
  let token: string;
  let chunkId: string;
  const query = randomUnit(dim, rng(dim));

  beforeAll(async () => {
    h = await startHarness({ VECTOR_DIMENSION: String(dim) });
    await applyCurrentMigration(h);
    owner = await h.owner();
    token = h.token(APP_ROLE, TENANT);
    const def = (await owner.query<{ def: string }>(`select pg_get_indexdef('sheratan.${ANN_INDEX}'::regclass) as def`)).rows[0]!.def;
    await owner.query(`drop index sheratan.${ANN_INDEX}`);
    await owner.query(`insert into sheratan.documents (tenant, title, source) select $1, 'bulk ' || i, 'import' from generate_series(1, ${DOCUMENTS}) i`, [
      TENANT,
    ]);
    // Random unit-ish vectors made by the database itself: one statement, nothing sent per row.
    await owner.query(
      `insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding)
       select $1, d.ids[1 + g % ${DOCUMENTS}], g, 'chunk ' || g, v.e
         from generate_series(1, ${rows}) g
        cross join (select array_agg(id order by id) as ids from sheratan.documents where tenant = $1) d
        cross join lateral (select array_agg(random() - 0.5)::vector(${dim}) as e from generate_series(1, ${dim}) where g > 0) v`,
      [TENANT],
    );
    await owner.query(def);
    chunkId = (await owner.query<{ id: string }>('select id from sheratan.document_chunks where chunk_index = 1')).rows[0]!.id;
  }, 600_000);
  afterAll(() => h.stop());

  const graphql = async (doc: string, variables: Record<string, unknown>): Promise<unknown[]> => {
    const res = await h.graphql<Record<string, unknown>>(doc, { variables, token });
    expect(res.body.errors).toBeUndefined();
    const data = Object.values(res.body.data!)[0] as unknown[] | { similarChunks: unknown[] };
    return Array.isArray(data) ? data : data.similarChunks;
  };
  const search = (extra = ''): Promise<unknown[]> =>
    graphql(`query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10${extra}) { distance } }`, { e: query });
  const used = (requests: () => Promise<unknown>, atLeast = 1): Promise<number> => indexScansDuring(owner, ANN_INDEX, requests, { atLeast });

  // The embedded engine has no autovacuum: before auto-analyze.ts this never happened there (issue 30).
  // (Not reltuples: CREATE INDEX sets that too, without the column statistics ANALYZE gathers.)
  const analyzed = (): Promise<void> =>
    waitFor(
      async () =>
        (await owner.query("select analyze_count + autoanalyze_count as n from pg_stat_user_tables where relid = 'sheratan.document_chunks'::regclass")).rows[0]
          .n > 0,
      60_000,
      'document_chunks analyzed',
    );

  test(`after a bulk load of ${rows} chunks (${dim} dimensions), the gateway analyzes the table and searches use the ANN index`, async () => {
    await analyzed();
    expect(await used(() => search())).toBeGreaterThan(0);
  }, 90_000);

  describe.each(INDEX_KINDS)('index:tune --kind %s', (kind) => {
    beforeAll(async () => {
      // Searched only once the gateway has analyzed the table, whichever test ran first (the
      // order is shuffled): an index that is not rebuilt here (hnsw_halfvec above 2,000
      // dimensions is hnsw's) would otherwise meet a table without statistics.
      await analyzed();
      // Above 2,000 dimensions hnsw is already on halfvec: hnsw_halfvec is the same index, not built twice.
      const same = kind === 'hnsw_halfvec' && dim > 2000 ? 'hnsw' : kind;
      if (kindOf((await describeAnnIndex(owner))!) !== same) {
        // IVFFlat with rows / 1000 lists is one to three lists here: a scan of nearly every vector in
        // another order, which the planner rightly declines. Ten, as `index:tune -- --ivfflat --lists 10` builds.
        await rebuildAnnIndex(owner, specForKind(kind, Math.max(10, ivfflatLists(rows))), { concurrently: false, maintenanceWorkMem: '256MB' });
      }
    }, 600_000);

    test('a plain search, ten in a row (the static query, plan-cached per session), uses it every time', async () => {
      const times = 10;
      const delta = await used(async () => {
        for (let i = 0; i < times; i++) expect(await search()).toHaveLength(10);
      }, times);
      expect(delta).toBeGreaterThanOrEqual(times);
    });

    test('a filtered search (the dynamic SQL run with EXECUTE … USING) uses it', async () => {
      expect(await used(async () => expect(await search(', filter: { createdAfter: "2000-01-01T00:00:00Z" }')).toHaveLength(10))).toBeGreaterThan(0);
    });

    test('a search capped per document, and more-like-this, use it', async () => {
      expect(await used(async () => expect(await search(', maxPerDocument: 1')).toHaveLength(10))).toBeGreaterThan(0);
      const similar = 'query ($id: UUID!) { documentChunkByRowId(rowId: $id) { similarChunks(first: 5) { distance } } }';
      expect(await used(async () => expect(await graphql(similar, { id: chunkId })).toHaveLength(5))).toBeGreaterThan(0);
    });
  });
}
