// `npm run index:tune` as users run it (issue 31: tests called
// rebuildAnnIndex with concurrently: false, so CREATE INDEX CONCURRENTLY never
// ran). On a server the rebuild is CONCURRENTLY: while an open writer holds it
// back, pg_stat_progress_create_index reports the command as CREATE INDEX
// CONCURRENTLY, the new index exists but is not valid yet, and other sessions
// go on writing; once the writer commits it ends valid under the old name. On
// the embedded engine it runs one statement at a time and says so first.
import type pg from 'pg';
import { embeddedTest, serverTest } from '../support/backend.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { insertRandomChunks } from '../support/embeddings.ts';
import { runCli, waitFor } from '../support/processes.ts';

let h: Harness;
let owner: pg.Client;
let documentId: string;
const CHUNKS = 100;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  documentId = await insertRandomChunks(owner, 'tune', CHUNKS, 'chunks');
}, 120_000);
afterAll(() => h.stop());

/** The ANN indexes on document_chunks (the one in use and a rebuild's new one), with their validity and options. */
const annIndexes = async (): Promise<Array<{ name: string; valid: boolean; options: string[] | null }>> =>
  (
    await owner.query(
      `select c.relname as name, i.indisvalid as valid, c.reloptions as options
         from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'sheratan.document_chunks'::regclass and c.relname like 'document_chunks_embedding%'
        order by c.relname`,
    )
  ).rows;

const insertChunk = (client: pg.Client, n: number) =>
  client.query(
    `insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding)
     select 'tune', $1, $2, 'written during the build', (select array_agg(random() + d.j * 0)::vector(384) from generate_series(1, 384) d(j))`,
    [documentId, n],
  );

serverTest('the embedded engine builds in one statement, without CONCURRENTLY: the next test')(
  'index:tune --hnsw on a server builds CONCURRENTLY: writes go on while it waits and builds, and it ends valid under the same name',
  async () => {
    // An open writer: CREATE INDEX CONCURRENTLY waits for it before it builds, which is the moment to look.
    const writer = await h.owner();
    await writer.query('begin');
    await insertChunk(writer, CHUNKS);
    const tune = runCli(['index:tune', '--hnsw', '--m', '8', '--ef-construction', '16'], { ...h.cliEnv, LOG_LEVEL: 'warn' });
    let progress: { command: string; phase: string } | undefined;
    try {
      await waitFor(
        async () => {
          if (tune.child.exitCode !== null) throw new Error(`index:tune exited ${tune.child.exitCode}: ${tune.output()}`);
          progress = (
            await owner.query<{ command: string; phase: string }>(
              "select command, phase from pg_stat_progress_create_index where relid = 'sheratan.document_chunks'::regclass",
            )
          ).rows[0];
          return progress !== undefined;
        },
        60_000,
        'the index build reported by pg_stat_progress_create_index',
      );
      expect(progress).toEqual({ command: 'CREATE INDEX CONCURRENTLY', phase: expect.stringMatching(/^waiting for writers/) });
      // The new index is there, not valid yet; the old one still serves searches.
      expect(await annIndexes()).toEqual([
        { name: 'document_chunks_embedding_idx', valid: true, options: null }, // the migrations' (default parameters)
        { name: 'document_chunks_embedding_new_idx', valid: false, options: ['m=8', 'ef_construction=16'] },
      ]);
      // Others write meanwhile (a plain CREATE INDEX would hold them until the build ends).
      const other = await h.owner();
      await other.query("set statement_timeout = '60s'"); // a regression fails here instead of hanging
      await insertChunk(other, CHUNKS + 1);
    } finally {
      await writer.query('commit');
    }
    const exit = await tune.exited;
    expect({ code: exit.code, output: tune.output() }).toEqual({
      code: 0,
      output: expect.stringMatching(/^rebuilt the ANN index as hnsw \(embedding vector_cosine_ops\) with \(m = 8, ef_construction = 16\) in [\d.]+ s\n/m),
    });
    expect(await annIndexes()).toEqual([{ name: 'document_chunks_embedding_idx', valid: true, options: ['m=8', 'ef_construction=16'] }]);
    expect((await owner.query('select count(*)::int as n from sheratan.document_chunks')).rows[0].n).toBe(CHUNKS + 2);
  },
  120_000,
);

embeddedTest('a server builds CONCURRENTLY: the test before')(
  'index:tune --hnsw on the embedded engine says first that requests wait for the build, then rebuilds under the same name',
  async () => {
    const tune = runCli(['index:tune', '--hnsw', '--m', '8', '--ef-construction', '16'], { ...h.cliEnv, LOG_LEVEL: 'warn' });
    const exit = await tune.exited;
    expect(exit.code).toBe(0);
    const output = tune.output();
    expect(output).toMatch(
      /"level":"warn","msg":"index:tune: the embedded engine runs one statement at a time: until the build ends, the gateway's requests wait/,
    );
    expect(output.indexOf('index:tune: the embedded engine')).toBeLessThan(output.indexOf('rebuilt the ANN index'));
    expect(output).toMatch(/^rebuilt the ANN index as hnsw \(embedding vector_cosine_ops\) with \(m = 8, ef_construction = 16\) in [\d.]+ s\n/m);
    expect(await annIndexes()).toEqual([{ name: 'document_chunks_embedding_idx', valid: true, options: ['m=8', 'ef_construction=16'] }]);
  },
  120_000,
);
