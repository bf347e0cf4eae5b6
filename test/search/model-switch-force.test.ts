// `npm run embeddings:migrate -- --switch --force` (README, "Changing the
// embedding model", step 4): the switch is refused while chunks miss their new
// vector; with --force it is made anyway, says how many chunks it left without
// one, and those chunks then have no embedding: searches with the new model's
// vectors find only the others. (model-switch.test.ts runs the whole switch.)
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { applyCurrentMigration } from '../support/current-migration.ts';
import { rng, randomUnit } from '../support/embeddings.ts';
import { runCli, waitFor } from '../support/processes.ts';

const NEW = 8;
let h: Harness;
let owner: pg.Client;

beforeAll(async () => {
  h = await startHarness();
  await applyCurrentMigration(h);
  owner = await h.owner();
  const chunks = Array.from({ length: 4 }, (_, i) => ({ content: `forced chunk ${i}`, embedding: randomUnit(384, rng(300 + i)) }));
  const res = await h.graphql('mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { clientMutationId } }', {
    variables: { input: { title: 'forced', chunks } },
  });
  expect(res.body.errors).toBeUndefined();
}, 120_000);
afterAll(() => h.stop());

async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const run = runCli(['embeddings:migrate', ...args], h.cliEnv);
  const exit = await run.exited;
  return { code: exit.code, out: run.output() };
}

const SEARCH = 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { chunk { content } } }';

test('--switch is refused while chunks miss their new vector; --switch --force makes it, names how many it left without one, and they have no embedding', async () => {
  const start = await cli('--dimension', String(NEW), '--name', 'tiny');
  expect(start.code).toBe(0);
  // Two of the four chunks get their new vector (as the owner, for brevity: storeEmbeddings is model-switch.test.ts's).
  const vectors = new Map([0, 1].map((i) => [`forced chunk ${i}`, randomUnit(NEW, rng(900 + i))]));
  for (const [content, vector] of vectors) {
    await owner.query('update sheratan.document_chunks set embedding_next = $1::vector where content = $2', [JSON.stringify(vector), content]);
  }

  const refused = await cli('--switch');
  expect(refused.code).toBe(1);
  expect(refused.out).toMatch(/2 chunks have no tiny embedding yet/);
  expect(
    (
      await owner.query(
        "select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = 'sheratan.document_chunks'::regclass and attname = 'embedding'",
      )
    ).rows,
  ).toEqual([{ t: 'vector(384)' }]);

  const forced = await cli('--switch', '--force');
  expect(forced.code).toBe(0);
  expect(forced.out).toMatch(/switched: searches now use the new model's embedding \(2 chunks have none\)/);
  const rows = await owner.query<{ content: string; has: boolean }>(
    'select content, embedding is not null as has from sheratan.document_chunks order by content',
  );
  expect(rows.rows).toEqual([
    { content: 'forced chunk 0', has: true },
    { content: 'forced chunk 1', has: true },
    { content: 'forced chunk 2', has: false },
    { content: 'forced chunk 3', has: false },
  ]);

  // Once the gateway has taken the new dimension, a search of it finds the two chunks that have a vector, and only them.
  let found: string[] = [];
  await waitFor(
    async () => {
      const res = await h.graphql<{ searchDocumentChunks: Array<{ chunk: { content: string } }> }>(SEARCH, { variables: { e: vectors.get('forced chunk 0') } });
      if (res.body.errors) return false;
      found = res.body.data!.searchDocumentChunks.map((m) => m.chunk.content);
      return true;
    },
    30_000,
    `searches with ${NEW}-dimension vectors answered`,
  );
  expect(found).toEqual(['forced chunk 0', 'forced chunk 1']);
}, 180_000);
