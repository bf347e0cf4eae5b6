// COPY through real clients, on both backends: psql's \copy, node-postgres
// with pg-copy-streams and porsager `postgres`, in text and CSV, in and out;
// bad data, a client's CopyFail and a rolled-back transaction store nothing;
// GraphQL keeps answering while a COPY is under way; and 50,000 chunks with
// embeddings bulk-load through COPY and are found by a GraphQL search.
//
// (On the embedded engine COPY FROM STDIN used to end the instance: PGlite
// cannot wait for data it has not been handed; see packages/pglite-server/src/copy-in.ts.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import postgres from 'postgres';
import { startHarness, type Harness } from '../support/harness.ts';
import { waitFor } from '../support/processes.ts';
import { randomUnit, rng } from '../support/embeddings.ts';
import { backend } from '../support/backend.ts';

// A small dimension keeps the bulk load's time about COPY rather than the
// table's per-row upkeep (HNSW index, full-text index, audit trigger): at 384
// dimensions the embedded engine took 350 s for these 50,000 rows (143 rows/s),
// where 50,000 rows into a plain two-column table took 0.5 s.
const DIM = 32;
let h: Harness;
let owner: pg.Client;
let dir: string;

const ROWS = [
  [1, 'plain'],
  [2, 'with, a comma'],
  [3, 'with "quotes"'],
  [4, 'tab\there'],
  [5, 'ünïcødé'],
] as const;
const csv = ROWS.map(([n, t]) => `${n},"${t.replace(/"/g, '""')}"\n`).join('');
/** CSV as COPY … TO writes it with force_quote *. */
const quotedCsv = csv.replace(/^(\d+),/gm, '"$1",');
const text = ROWS.map(([n, t]) => `${n}\t${t.replace(/\t/g, '\\t')}\n`).join('');

beforeAll(async () => {
  h = await startHarness({ VECTOR_DIMENSION: String(DIM) });
  owner = await h.owner();
  dir = mkdtempSync(path.join(tmpdir(), 'sheratan-copy-'));
  await owner.query('create table sheratan_private.copy_target (n int primary key, t text not null)');
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await h.stop();
});
beforeEach(() => owner.query('truncate sheratan_private.copy_target'));

const stored = async (): Promise<Array<{ n: number; t: string }>> => (await owner.query('select n, t from sheratan_private.copy_target order by n')).rows;
const expected = ROWS.map(([n, t]) => ({ n, t }));

function psql(...commands: string[]): { out: string; err: string; status: number | null } {
  const r = spawnSync('psql', [h.ownerUrl, '-XAtq', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

test('psql \\copy loads and unloads CSV and text files', async () => {
  writeFileSync(path.join(dir, 'in.csv'), csv);
  writeFileSync(path.join(dir, 'in.txt'), text);
  const csvIn = psql(`\\copy sheratan_private.copy_target from '${dir}/in.csv' with (format csv)`);
  expect(csvIn).toMatchObject({ status: 0, err: '' });
  expect(await stored()).toEqual(expected);
  const out = psql(
    `\\copy sheratan_private.copy_target to '${dir}/out.csv' with (format csv, force_quote *)`,
    `\\copy (select * from sheratan_private.copy_target order by n) to '${dir}/out.txt'`,
  );
  expect(out).toMatchObject({ status: 0, err: '' });
  expect(readFileSync(path.join(dir, 'out.csv'), 'utf8')).toBe(quotedCsv);
  expect(readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe(text);

  await owner.query('truncate sheratan_private.copy_target');
  expect(psql(`\\copy sheratan_private.copy_target from '${dir}/in.txt'`)).toMatchObject({ status: 0, err: '' });
  expect(await stored()).toEqual(expected);
});

test('node-postgres with pg-copy-streams copies in and out in text, CSV and binary', async () => {
  await pipeline(Readable.from([text.slice(0, 20), text.slice(20)]), owner.query(copyFrom('copy sheratan_private.copy_target from stdin')));
  expect(await stored()).toEqual(expected);
  const chunks: Buffer[] = [];
  for await (const c of owner.query(copyTo('copy (select * from sheratan_private.copy_target order by n) to stdout with (format csv, force_quote *)'))) {
    chunks.push(c as Buffer);
  }
  expect(Buffer.concat(chunks).toString('utf8')).toBe(quotedCsv);

  await owner.query('truncate sheratan_private.copy_target');
  await pipeline(Readable.from([csv]), owner.query(copyFrom('copy sheratan_private.copy_target (n, t) from stdin with (format csv)')));
  expect(await stored()).toEqual(expected);

  // Binary: what COPY TO wrote loads back unchanged.
  const binary: Buffer[] = [];
  for await (const c of owner.query(copyTo('copy sheratan_private.copy_target to stdout with (format binary)'))) binary.push(c as Buffer);
  expect(Buffer.concat(binary).subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
  await owner.query('truncate sheratan_private.copy_target');
  await pipeline(Readable.from([Buffer.concat(binary)]), owner.query(copyFrom('copy sheratan_private.copy_target from stdin with (format binary)')));
  expect(await stored()).toEqual(expected);
});

test('porsager postgres copies in and out', async () => {
  const sql = postgres(h.ownerUrl, { max: 1, onnotice: () => undefined });
  try {
    const writable = await sql`copy sheratan_private.copy_target from stdin with (format csv)`.writable();
    await pipeline(Readable.from([csv]), writable);
    expect(await stored()).toEqual(expected);
    const readable = await sql`copy (select * from sheratan_private.copy_target order by n) to stdout`.readable();
    const chunks: Buffer[] = [];
    for await (const c of readable) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    // The connection goes on with ordinary queries.
    expect(await sql`select count(*)::int as n from sheratan_private.copy_target`).toEqual([{ n: ROWS.length }]);
  } finally {
    await sql.end();
  }
});

test('a bad row, a CopyFail and a rolled-back transaction store nothing, and the connection goes on', async () => {
  const bad = `1\tfine\nnot-a-number\toops\n`;
  await expect(pipeline(Readable.from([bad]), owner.query(copyFrom('copy sheratan_private.copy_target from stdin')))).rejects.toThrow(
    /invalid input syntax for type integer: "not-a-number"/,
  );
  expect(await stored()).toEqual([]);

  // The client gives up half-way: its stream errors, pg-copy-streams sends CopyFail.
  const failing = new Readable({
    read() {
      this.push('1\tfirst\n');
      this.destroy(new Error('the source went away'));
    },
  });
  await expect(pipeline(failing, owner.query(copyFrom('copy sheratan_private.copy_target from stdin')))).rejects.toThrow(/the source went away/);
  expect(await stored()).toEqual([]);
  expect((await owner.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);

  await owner.query('begin');
  await pipeline(Readable.from([text]), owner.query(copyFrom('copy sheratan_private.copy_target from stdin')));
  expect((await owner.query('select count(*)::int as n from sheratan_private.copy_target')).rows).toEqual([{ n: ROWS.length }]);
  await owner.query('rollback');
  expect(await stored()).toEqual([]);
});

test('GraphQL answers while a COPY is still sending its data', async () => {
  const documents = (await owner.query("select count(*)::int as n from sheratan.documents where tenant = 'acme'")).rows[0].n as number;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let firstSent = false;
  const slow = Readable.from(
    (async function* () {
      yield '1\tbefore the pause\n';
      // Asked for more: the first line has gone to the engine, the COPY is open.
      firstSent = true;
      await gate;
      yield '2\tafter the pause\n';
    })(),
  );
  let copyDone = false;
  const copying = pipeline(slow, owner.query(copyFrom('copy sheratan_private.copy_target from stdin'))).finally(() => (copyDone = true));
  await waitFor(() => firstSent, 30_000, 'the COPY to take its first line');
  const res = await h.graphql<{ allDocuments: { totalCount: number } }>('{ allDocuments { totalCount } }');
  // Answered while the COPY still waits for the rest of its data (no time bound: the order is the claim).
  const answeredDuringCopy = !copyDone;
  release();
  await copying;
  expect(answeredDuringCopy).toBe(true);
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data!.allDocuments.totalCount).toBe(documents);
  expect((await stored()).map((r) => r.n)).toEqual([1, 2]);
  expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
});

test('50,000 chunks with embeddings bulk-load through COPY and a GraphQL search finds them', async () => {
  const CHUNKS = 50_000;
  const PER_DOCUMENT = 500;
  const next = rng(42);
  const docs = await owner.query<{ id: string }>(
    `insert into sheratan.documents (tenant, title) select 'copy-tenant', 'bulk ' || i from generate_series(1, $1) i returning id`,
    [CHUNKS / PER_DOCUMENT],
  );
  const vectors: number[][] = [];
  function* lines(): Generator<string> {
    for (let i = 0; i < CHUNKS; i++) {
      const v = randomUnit(DIM, next);
      if (i % 5000 === 0) vectors.push(v);
      // Six decimals, as embedding APIs' JSON gives them.
      yield `${docs.rows[Math.floor(i / PER_DOCUMENT)]!.id}\tcopy-tenant\t${i % PER_DOCUMENT}\tbulk chunk ${i}\t[${v.map((x) => x.toFixed(6)).join(',')}]\n`;
    }
  }
  const started = Date.now();
  await pipeline(
    Readable.from(lines()),
    owner.query(copyFrom('copy sheratan.document_chunks (document_id, tenant, chunk_index, content, embedding) from stdin')),
  );
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`[copy] ${backend}: ${CHUNKS} chunks × ${DIM} dims in ${seconds.toFixed(1)} s (${Math.round(CHUNKS / seconds)} rows/s)\n`);
  expect((await owner.query(`select count(*)::int as n from sheratan.document_chunks where tenant = 'copy-tenant'`)).rows).toEqual([{ n: CHUNKS }]);

  // Each sampled vector's own chunk is its nearest neighbour, through the API as that tenant.
  const token = h.token('sheratan_app', 'copy-tenant');
  for (const [k, v] of vectors.entries()) {
    const res = await h.graphql<{ searchDocumentChunks: Array<{ similarity: number; chunk: { content: string } }> }>(
      'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 3) { similarity chunk { content } } }',
      { variables: { e: v }, token },
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.searchDocumentChunks[0]).toMatchObject({ chunk: { content: `bulk chunk ${k * 5000}` } });
    expect(res.body.data!.searchDocumentChunks[0]!.similarity).toBeCloseTo(1, 5);
  }
}, 600_000);
