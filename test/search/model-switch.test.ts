// Changing the embedding model without downtime (npm run embeddings:migrate),
// on both backends: a 768-dimension column beside the live 384 one, filled
// through the storeEmbeddings mutation and through jobs while searches keep
// answering from the live one; the progress in GraphQL, in the command and in
// doctor; the switch refused while chunks miss their new vector, then made;
// searches with the new model's vectors; the old column dropped. A searcher
// runs against the gateway the whole time.
import type pg from 'pg';
import { runDoctor } from '../../src/operations/doctor.ts';
import { runWorker } from '../../src/client/job-worker.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { rng, randomUnit } from '../support/embeddings.ts';
import { runCli, waitFor } from '../support/processes.ts';

const OLD = 384;
const NEW = 768;
let h: Harness;
let owner: pg.Client;
// Each chunk's vector by each model, by its content.
const oldVectors = new Map<string, number[]>();
const newVectors = new Map<string, number[]>();
const chunkIds = new Map<string, string>();
const acme = () => h.token('sheratan_app', 'acme');
const globex = () => h.token('sheratan_app', 'globex');

async function ingest(token: string, title: string, n: number, seed: number, dimension = OLD): Promise<string> {
  const chunks = Array.from({ length: n }, (_, i) => {
    const content = `${title} chunk ${i}`;
    oldVectors.set(content, randomUnit(OLD, rng(seed * 100 + i)));
    newVectors.set(content, randomUnit(NEW, rng(seed * 100 + i + 50_000)));
    return { content, embedding: (dimension === OLD ? oldVectors : newVectors).get(content)! };
  });
  const res = await h.graphql<{ ingestDocument: { document: { rowId: string } } }>(
    'mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }',
    { variables: { input: { title, content: title, chunks } }, token },
  );
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.ingestDocument.document.rowId;
}

async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const run = runCli(['embeddings:migrate', ...args], h.cliEnv);
  const exit = await run.exited;
  return { code: exit.code, out: run.output() };
}

const STORE = 'mutation ($model: String!, $items: [ChunkEmbeddingInput]!) { storeEmbeddings(input: { model: $model, embeddings: $items }) { stored } }';
const store = (token: string, model: string, contents: string[], vector = (c: string) => newVectors.get(c)!) =>
  h.graphql<{ storeEmbeddings: { stored: number } }>(STORE, {
    variables: { model, items: contents.map((c) => ({ chunkId: chunkIds.get(c), embedding: vector(c) })) },
    token,
  });
const PROGRESS = '{ embeddingMigration { model dimension liveModel liveDimension embedded missing } }';
const SEARCH = 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 3) { similarity chunk { content } } }';

// The searcher: a search every few milliseconds with the live model's vector
// of a known chunk; that chunk must come first.
interface Outcome {
  /** When its answer came. */
  at: number;
  model: 'old' | 'new';
  ok: boolean;
  error?: string;
}
const outcomes: Outcome[] = [];
let searcherModel: 'old' | 'new' = 'old';
let searching = true;
let searcher: Promise<void>;
const probe = 'acme doc 1 chunk 3';

beforeAll(async () => {
  h = await startHarness();
  await applyCurrentMigration(h);
  owner = await h.owner();
  for (let d = 0; d < 3; d++) await ingest(acme(), `acme doc ${d}`, 10, d + 1);
  await ingest(globex(), 'globex doc 0', 10, 9);
  for (const r of (await owner.query<{ id: string; content: string }>('select id, content from sheratan.document_chunks')).rows) chunkIds.set(r.content, r.id);
  searcher = (async () => {
    while (searching) {
      const model = searcherModel;
      const res = await h.graphql<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>(SEARCH, {
        variables: { e: (model === 'old' ? oldVectors : newVectors).get(probe) },
        token: acme(),
      });
      const top = res.body.data?.searchDocumentChunks?.[0];
      const error = res.body.errors?.[0]?.message ?? (top?.chunk.content === probe ? undefined : `top result ${JSON.stringify(top)}`);
      outcomes.push({ at: Date.now(), model, ok: !error, ...(error ? { error } : {}) });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
}, 120_000);
afterAll(async () => {
  searching = false;
  await searcher;
  await h.stop();
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a full model switch, 384 → 768, with searches answering throughout', async () => {
  // ---- before: no switch; storeEmbeddings says so.
  expect((await h.graphql(PROGRESS, { token: acme() })).body.data).toEqual({ embeddingMigration: null });
  expect((await store(acme(), 'mpnet', [probe])).body.errors?.[0]?.message).toMatch(/expected 384 dimensions, not 768/);
  expect((await store(acme(), 'mpnet', [probe], (c) => oldVectors.get(c)!)).body.errors?.[0]?.message).toMatch(/no embedding model migration is in progress/);
  const status0 = await cli();
  expect(status0.out).toContain('live: vector(384); no model switch has been started');

  // ---- start: the new column and its index beside the live one.
  const startedAt = Date.now();
  const start = await cli('--dimension', String(NEW), '--name', 'mpnet', '--live-name', 'minilm');
  expect(start.out).toContain('added embedding_next vector(768)');
  expect(start.code).toBe(0);
  expect(start.out).toContain('live: minilm, vector(384)');
  expect(start.out).toContain('next: mpnet, vector(768)');
  expect(start.out).toContain('progress: 0 of 40 chunks have the new embedding (0.0 %), 40 to go');
  const index = await owner.query<{ def: string }>("select pg_get_indexdef('sheratan.document_chunks_embedding_next_idx'::regclass) as def");
  expect(index.rows[0]!.def).toMatch(/USING hnsw \(embedding_next vector_cosine_ops\)/);
  expect((await cli('--dimension', '1024', '--name', 'other')).out).toMatch(/a migration to mpnet is already in progress/);

  // The GraphQL progress counts the caller's own chunks.
  expect((await h.graphql(PROGRESS, { token: acme() })).body.data).toEqual({
    embeddingMigration: { model: 'mpnet', dimension: 768, liveModel: 'minilm', liveDimension: 384, embedded: '0', missing: '30' },
  });
  // The running gateway takes 768-dimension vectors within seconds (no restart).
  await waitFor(async () => !(await store(acme(), 'mpnet', [probe])).body.errors, 10_000, 'the gateway accepting 768 dimensions');

  // ---- bad input stores nothing, with a message naming what is wrong.
  const embedded = async () => Number((await owner.query('select count(embedding_next) as n from sheratan.document_chunks')).rows[0].n);
  expect(await embedded()).toBe(1);
  const wrongDim = await store(acme(), 'mpnet', ['acme doc 0 chunk 0'], (c) => oldVectors.get(c)!);
  expect(wrongDim.body.errors?.[0]?.message).toMatch(/expected 768 dimensions, not 384/);
  expect((await store(acme(), 'nope', ['acme doc 0 chunk 0'])).body.errors?.[0]?.message).toMatch(/the model being migrated to is mpnet, not nope/);
  const zero = await h.graphql(STORE, {
    variables: { model: 'mpnet', items: [{ chunkId: chunkIds.get('acme doc 0 chunk 0'), embedding: new Array(NEW).fill(0) }] },
    token: acme(),
  });
  expect(zero.body.errors?.[0]?.message).toMatch(/zero vector/);
  const twice = await store(acme(), 'mpnet', ['acme doc 0 chunk 0', 'acme doc 0 chunk 0']);
  expect(twice.body.errors?.[0]?.message).toMatch(/each chunk may appear once/);
  // Another tenant's chunk is not found, and the batch stores nothing.
  const foreign = await store(acme(), 'mpnet', ['acme doc 0 chunk 0', 'globex doc 0 chunk 0']);
  expect(foreign.body.errors?.[0]?.message).toMatch(/1 of the 2 chunks were not found; nothing was stored/);
  expect(await embedded()).toBe(1);
  // Readonly may not store.
  const ro = await store(h.token('sheratan_readonly', 'acme'), 'mpnet', ['acme doc 0 chunk 0']);
  expect(ro.body.errors?.map((e) => e.message)).toEqual(['permission denied for function store_embeddings']);

  // ---- acme's vectors through the mutation (all but one document).
  const acmeContents = [...newVectors.keys()].filter((c) => c.startsWith('acme doc 0') || c.startsWith('acme doc 1'));
  const stored = await store(acme(), 'mpnet', acmeContents);
  expect(stored.body.data).toEqual({ storeEmbeddings: { stored: 20 } });

  // The switch waits for every chunk.
  const early = await cli('--switch');
  expect(early.code).toBe(1);
  expect(early.out).toMatch(/20 chunks have no mpnet embedding yet/);

  // doctor shows the progress.
  const checks = await runDoctor(h.config, h.gateway.db);
  const check = checks.find((c) => c.name === 'embedding model switch');
  expect(check?.detail).toMatch(/migrating to mpnet \(vector\(768\)\): 20 of 40 chunks have its embedding, 20 to go/);

  // ---- the rest through jobs: one per document, run by a worker with each tenant's token.
  const queued = await cli('--jobs');
  expect(queued.code).toBe(0);
  expect(queued.out).toContain('queued 2 embeddings.store job(s)');
  expect((await cli('--jobs')).out).toContain('queued 0 embeddings.store job(s)'); // not twice
  for (const [i, token] of [acme(), globex()].entries()) {
    const worker = runWorker({
      url: `${h.url}/graphql`,
      token,
      jobTypes: ['embeddings.store'],
      handleSignals: false,
      pollIntervalMs: 100,
      onError: (e) => process.stderr.write(`worker: ${e.message}\n`),
      handler: async (job) => {
        const { model, documentId } = job.payload as { model: string; documentId: string };
        const doc = await h.graphql<{ documentByRowId: { chunks: { nodes: Array<{ rowId: string; content: string }> } } }>(
          'query ($id: UUID!) { documentByRowId(rowId: $id) { chunks(first: 100) { nodes { rowId content } } } }',
          { variables: { id: documentId }, token },
        );
        if (!doc.body.data) throw new Error(JSON.stringify(doc.body.errors));
        const nodes = doc.body.data.documentByRowId.chunks.nodes;
        const res = await h.graphql<{ storeEmbeddings: { stored: number } }>(STORE, {
          variables: { model, items: nodes.map((n) => ({ chunkId: n.rowId, embedding: newVectors.get(n.content) })) },
          token,
        });
        if (res.body.errors) throw new Error(res.body.errors[0]!.message);
        return res.body.data!.storeEmbeddings;
      },
    });
    try {
      await waitFor(
        async () =>
          (await owner.query("select count(*)::int as n from sheratan.jobs where job_type = 'embeddings.store' and status <> 'completed'")).rows[0].n ===
          (i === 0 ? 1 : 0), // acme's job first, then globex's
        20_000,
        'the embeddings jobs done',
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify((await owner.query('select tenant, status, attempts, last_error from sheratan.jobs')).rows)}`);
      });
    } finally {
      await worker.stop();
    }
  }
  expect((await h.graphql(PROGRESS, { token: acme() })).body.data).toMatchObject({ embeddingMigration: { embedded: '30', missing: '0' } });
  expect((await cli()).out).toContain('progress: 40 of 40 chunks have the new embedding (100.0 %), 0 to go');

  // Searches still used the live (old) model all along.
  const before = outcomes.filter((o) => o.at > startedAt);
  expect(before.length).toBeGreaterThan(20);
  expect(before.filter((o) => !o.ok)).toEqual([]);

  // ---- the switch.
  const switchStarted = Date.now();
  const done = await cli('--switch');
  expect(done.out).toContain('switched: searches now use the new model');
  expect(done.code).toBe(0);
  searcherModel = 'new';
  expect(done.out).toContain('live: mpnet, vector(768)');
  expect(done.out).toContain('previous: minilm, vector(384)');

  // A query of the old model's dimension now gets a clear message; a new one finds the chunk by its new vector.
  await waitFor(
    async () =>
      /expected 768 dimensions, not 384/.test(
        (await h.graphql(SEARCH, { variables: { e: oldVectors.get(probe) }, token: acme() })).body.errors?.[0]?.message ?? '',
      ),
    10_000,
    'old-dimension queries refused',
  );
  const found = await h.graphql<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>(SEARCH, {
    variables: { e: newVectors.get('globex doc 0 chunk 4') },
    token: globex(),
  });
  expect(found.body.errors).toBeUndefined();
  expect(found.body.data!.searchDocumentChunks[0]).toEqual({ similarity: expect.closeTo(1, 5), chunk: { content: 'globex doc 0 chunk 4' } });
  // The switch analyzed the table, so the new column's index is costed with statistics (the embedded
  // engine has no autovacuum). (Whether searches use it is a matter of size: ann-index-use-*.test.ts.)
  expect(
    (await owner.query("select last_analyze from pg_stat_user_tables where relid = 'sheratan.document_chunks'::regclass")).rows[0].last_analyze.getTime(),
  ).toBeGreaterThanOrEqual(switchStarted - 1000);
  // Writes take the new model's vectors: a new document, and the other retrieval modes answer.
  await ingest(acme(), 'acme doc new', 3, 7, NEW);
  const hybrid = await h.graphql<{ hybridSearchDocumentChunks: Array<{ chunk: { content: string } }> }>(
    'query ($e: Vector) { hybridSearchDocumentChunks(queryText: "new", embedding: $e, first: 3) { chunk { content } } }',
    { variables: { e: newVectors.get('acme doc new chunk 1') }, token: acme() },
  );
  expect(hybrid.body.errors).toBeUndefined();
  expect(hybrid.body.data!.hybridSearchDocumentChunks[0]!.chunk.content).toBe('acme doc new chunk 1');
  const diverse = await h.graphql(
    `query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 3, diversity: { lambda: 0.5 }, maxPerDocument: 1) { chunk { content } } }`,
    {
      variables: { e: newVectors.get(probe) },
      token: acme(),
    },
  );
  expect(diverse.body.errors).toBeUndefined();
  const similar = await h.graphql<{ documentChunkByRowId: { similarChunks: Array<{ chunk: { content: string } }> } }>(
    'query ($id: UUID!) { documentChunkByRowId(rowId: $id) { similarChunks(first: 2) { chunk { content } } } }',
    { variables: { id: chunkIds.get(probe) }, token: acme() },
  );
  expect(similar.body.errors).toBeUndefined();
  const oldIngest = await h.graphql('mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }', {
    variables: { input: { title: 'old model', content: 'x', chunks: [{ content: 'x', embedding: randomUnit(OLD, rng(5)) }] } },
    token: acme(),
  });
  expect(oldIngest.body.errors?.[0]?.message).toMatch(/expected 768 dimensions, not 384/);
  // doctor: the old column is kept until dropped.
  const after = await runDoctor({ ...h.config, vectorDimension: NEW }, h.gateway.db);
  expect(after.find((c) => c.name === 'embedding model switch')?.detail).toMatch(/switched from minilm \(vector\(384\)\), whose column is still kept/);

  // What named the live column (views, the index of chunks awaiting an embedding) names the new live one, not the kept one.
  const following = await owner.query<{ name: string }>(
    `select viewname as name from pg_views where definition ~ 'embedding_previous'
     union all select indexname from pg_indexes where indexdef ~ 'embedding_previous' and indexname <> 'document_chunks_embedding_previous_idx'`,
  );
  expect(following.rows).toEqual([]);

  // ---- drop the old column.
  await wait(300);
  const dropped = await cli('--drop-previous');
  expect({ code: dropped.code, out: dropped.code === 0 ? '' : dropped.out }).toEqual({ code: 0, out: '' });
  expect(dropped.out).toContain('dropped embedding_previous');
  const columns = (
    await owner.query(
      "select attname from pg_attribute where attrelid = 'sheratan.document_chunks'::regclass and attname ~ '^embedding(_previous|_next)?$' and not attisdropped",
    )
  ).rows;
  expect(columns).toEqual([{ attname: 'embedding' }]);
  await wait(300);
  searching = false;
  await searcher;

  // ---- searches answered throughout. Told apart by what each search sent,
  // not by time windows: every search with the new model's vector answered;
  // every search answered before the switch began answered with results; an
  // old-model search after that may meet only the clear dimension error.
  const withNew = outcomes.filter((o) => o.model === 'new');
  expect(withNew.length).toBeGreaterThan(10);
  expect(withNew.filter((o) => !o.ok)).toEqual([]);
  const during = outcomes.filter((o) => o.model === 'old' && !o.ok);
  // (A search whose snapshot predates the switch's commit but that waited for
  // its lock reads the old dimension in assert_embedding and meets pgvector's
  // own check instead.)
  for (const o of during) expect(o.error).toMatch(/expected 768 dimensions, not 384|different vector dimensions 768 and 384/);
  expect(outcomes.filter((o) => o.at < switchStarted && !o.ok)).toEqual([]);
  const refused = outcomes.filter((o) => !o.ok).length;
  process.stderr.write(
    `model switch: ${outcomes.length} searches during the test, ${outcomes.length - refused} answered with the probe chunk first, ` +
      `${refused} refused for the old dimension between the switch's commit and the searcher's move\n`,
  );
}, 240_000);

test('--cancel drops the new column; nothing else changes', async () => {
  const models = async () => (await owner.query<ModelRow>('select name, dimension, state from sheratan.embedding_models order by state')).rows;
  const before = await models();
  try {
    await cancelAndRefuse(before, models);
  } finally {
    // It leaves the models as it found them (a fresh database records none), whichever test runs first.
    if (!before.length) await owner.query('delete from sheratan.embedding_models');
  }
}, 120_000);

interface ModelRow {
  name: string;
  dimension: number;
  state: string;
}

async function cancelAndRefuse(before: ModelRow[], models: () => Promise<ModelRow[]>): Promise<void> {
  // Above 2,000 dimensions the new column's index is on halfvec, as for the live one.
  const start = await cli('--dimension', '3072', '--name', 'large');
  expect(start.out).toContain('next: large, vector(3072)');
  expect(start.code).toBe(0);
  const index = await owner.query<{ def: string }>("select pg_get_indexdef('sheratan.document_chunks_embedding_next_idx'::regclass) as def");
  expect(index.rows[0]!.def).toMatch(/USING hnsw \(\(\(embedding_next\)::halfvec\(3072\)\) halfvec_cosine_ops\)/);
  const cancel = await cli('--cancel');
  expect(cancel.code).toBe(0);
  expect(cancel.out).toContain('cancelled: dropped embedding_next');
  expect(
    (
      await owner.query(
        "select count(*)::int as n from pg_attribute where attrelid = 'sheratan.document_chunks'::regclass and attname = 'embedding_next' and not attisdropped",
      )
    ).rows[0].n,
  ).toBe(0);
  // The live model is recorded (as "initial" when this test runs alone), and nothing else is left.
  expect((await models()).filter((m) => m.state !== 'live')).toEqual([]);
  if (before.length) expect(await models()).toEqual(before);
  // Arguments are checked before anything runs.
  expect((await cli('--dimension', '5000', '--name', 'x')).out).toMatch(/--dimension must be a whole number from 1 to 4000, not "5000"/);
  expect((await cli('--name', 'x')).out).toMatch(/starting a model switch takes both --dimension and --name/);
  expect((await cli('--switch', '--cancel')).out).toMatch(/choose one step/);
  expect((await cli('--dimension', '8', '--name', 'bad name')).out).toMatch(/embedding_models_name_check|violates check constraint/);
  expect((await cli('--help')).out).toContain('change the embedding model without downtime');
}
