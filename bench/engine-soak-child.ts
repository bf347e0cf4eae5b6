// One child process of `npm run bench:engine-soak` (bench/engine-soak.ts):
// churns the embedded engine the way the test suite and users do, through the
// product's own path (startEmbedded: a worker thread running PGlite behind the
// wire-protocol listener). `--engines E` slots run at once in this process;
// each slot does `--cycles C` cycles of start → queries → stop: a fresh data
// directory on its first cycle and every `--fresh-every` cycles (a test
// file's engine), the same one otherwise (a user's restart). Each cycle
// creates a table with a vector column, COPYs rows in, builds an HNSW index,
// runs nearest-neighbour searches and an exact scan, over a socket login.
// `--stop terminate` ends each engine as the product did before 2026-11-24 and
// still does when a clean stop takes over 5 s or the process exits with the
// engine running: Worker.terminate() right after the work, without closing
// PGlite (the shape in which rehearsals saw the abort twice).
// Prints one line `cycle <slot> <n> <ms>` per finished cycle (the parent counts
// them, so a crash mid-run still shows how far it got), then exits 0.
// V8 flags come from the parent's command line for this process; `--runtime-flags`
// sets more with v8.setFlagsFromString before any engine starts (the way a
// module of the product could, since NODE_OPTIONS refuses V8's WebAssembly flags).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Worker } from 'node:worker_threads';
import { dataDirSecret, DATABASE_NAME, loginPasswords, SHADOW_DATABASE_NAME, startEmbedded } from '@sheratan/pglite-server';
import type { WorkerInput, WorkerMessage } from '@sheratan/pglite-server/backend-thread';
import { OWNER_ROLE } from '@sheratan/pglite-server';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: '2' },
    cycles: { type: 'string', default: '8' },
    'fresh-every': { type: 'string', default: '4' },
    rows: { type: 'string', default: '400' },
    'runtime-flags': { type: 'string', default: '' },
    stop: { type: 'string', default: 'clean' },
  },
});
if (values['runtime-flags']) v8.setFlagsFromString(values['runtime-flags']);
const engines = Number(values.engines);
const cycles = Number(values.cycles);
const freshEvery = Math.max(1, Number(values['fresh-every']));
const rows = Number(values.rows);
const DIM = 16;

const vector = (seed: number): string => `[${Array.from({ length: DIM }, (_, j) => Math.sin(seed * 7.1 + j * 1.3).toFixed(4)).join(',')}]`;

/** The engine's thread started directly, to be terminated rather than stopped (`--stop terminate`). */
async function startThread(dataDir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const passwords = loginPasswords(dataDir);
  const input: WorkerInput = {
    pgdata: path.join(dataDir, 'pgdata'),
    passwords,
    sealKey: dataDirSecret(dataDir, 'seal-key'),
    databaseName: DATABASE_NAME,
    shadowDatabaseName: SHADOW_DATABASE_NAME,
    host: '127.0.0.1',
    port: 0,
  };
  const worker = new Worker(new URL(import.meta.resolve('@sheratan/pglite-server/backend-thread')), { workerData: input });
  const ready = await new Promise<WorkerMessage>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  if (ready.type !== 'ready') throw new Error(`the engine did not start: ${JSON.stringify(ready)}`);
  return {
    url: `postgres://${OWNER_ROLE}:${encodeURIComponent(passwords[OWNER_ROLE]!)}@127.0.0.1:${ready.port}/${DATABASE_NAME}`,
    stop: async () => void (await worker.terminate()),
  };
}

async function cycle(dataDir: string, n: number): Promise<void> {
  const engine =
    values.stop === 'terminate'
      ? await startThread(dataDir)
      : await (async () => {
          const e = await startEmbedded(dataDir, { purpose: 'engine soak' });
          return { url: e.url(), stop: () => e.stop() };
        })();
  try {
    const client = new pg.Client(engine.url);
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('create extension if not exists vector');
      await client.query(`drop table if exists soak; create table soak (id int primary key, body text, embedding vector(${DIM}))`);
      const lines = Array.from({ length: rows }, (_, i) => `${i}\tchunk ${n}-${i}\t${vector(n * rows + i)}\n`);
      await pipeline(Readable.from(lines), client.query(copyFrom('copy soak (id, body, embedding) from stdin')));
      await client.query('create index on soak using hnsw (embedding vector_cosine_ops)');
      for (let q = 0; q < 5; q++) {
        const { rows: found } = await client.query('select id from soak order by embedding <=> $1::vector limit 5', [vector(q)]);
        if (found.length !== 5) throw new Error(`a search found ${found.length} rows, not 5`);
      }
      // A big statement's worth of work as well (an exact scan and an aggregate), as migrations and tests do.
      await client.query("select count(*), avg(embedding <-> $1::vector) from soak where body like 'chunk %'", [vector(1)]);
    } finally {
      await client.end();
    }
  } finally {
    await engine.stop();
  }
}

async function slot(index: number): Promise<void> {
  let dataDir = '';
  for (let n = 0; n < cycles; n++) {
    if (n % freshEvery === 0) {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-soak-'));
    }
    const started = Date.now();
    await cycle(dataDir, n);
    process.stdout.write(`cycle ${index} ${n} ${Date.now() - started}\n`);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

await Promise.all(Array.from({ length: engines }, (_, i) => slot(i)));
process.exit(0);
