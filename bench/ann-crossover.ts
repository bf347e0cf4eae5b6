// From which table size the ANN index beats an exact scan (issue 30, item 6),
// at 384 and 3,072 dimensions, on the embedded engine or on DATABASE_URL's
// server. On a scratch table (schema sheratan_bench, dropped afterwards)
// grown step by step with random unit vectors, each step builds the HNSW
// index the store builds at that dimension (on the vector up to 2,000
// dimensions, on embedding::halfvec(n) above), analyzes, and times the top-10
// query in the store's form (ordered by the index's expression) through the
// index and as an exact scan (index scans disabled, for this comparison only).
// Prints a table and writes bench/results/ann-crossover-<backend>.json.
//   node bench/ann-crossover.ts [--dims 384,3072] [--sizes 100,250,500,1000,2000,4000] [--queries 15]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config/config.ts';
import { startGateway } from '../src/http/start.ts';
import { tempDataDir } from '../test/support/harness.ts';
import { percentile } from './support.ts';

const { values } = parseArgs({
  options: {
    dims: { type: 'string', default: '384,3072' },
    sizes: { type: 'string', default: '100,250,500,1000,2000,4000' },
    queries: { type: 'string', default: '25' },
  },
});
const dims = values.dims.split(',').map(Number);
const sizes = values.sizes
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const queries = Number(values.queries);

const config = loadConfig();
const dataDir = config.databaseUrl ? undefined : tempDataDir();
// A server needs only DATABASE_URL (a role that may create a schema, with pgvector installed); the
// embedded engine is started by a gateway on a temporary data directory.
const running = config.databaseUrl ? null : await startGateway({ ...config, dataDir: dataDir!, logLevel: 'silent' }, { port: 0 });
const backend = running ? 'embedded' : 'server';
const client = new pg.Client(running?.db.ownerUrl ?? config.databaseUrl);
await client.connect();

interface Step {
  rows: number;
  build_s: number;
  index_p50_ms: number;
  exact_p50_ms: number;
  plan_uses_index: boolean;
}
const out: Record<string, { steps: Step[]; index_wins_from: number | null }> = {};
const vectorSql = (n: number) => `(select array_agg(random() - 0.5) from generate_series(1, ${n}) where g > 0)::vector(${n})`;

try {
  for (const n of dims) {
    await client.query('drop schema if exists sheratan_bench cascade; create schema sheratan_bench');
    await client.query(`create table sheratan_bench.crossover (id integer primary key, embedding vector(${n}) not null)`);
    const order = n > 2000 ? `embedding::halfvec(${n}) <=> $1::halfvec(${n})` : 'embedding <=> $1';
    const column = n > 2000 ? `(embedding::halfvec(${n})) halfvec_cosine_ops` : 'embedding vector_cosine_ops';
    const topK = `select id, embedding <=> $1 as distance from sheratan_bench.crossover order by ${order} limit 10`;
    const qs = (await client.query<{ v: string }>(`select ${vectorSql(n)}::text as v from generate_series(1, ${queries}) g`)).rows.map((r) => r.v);
    const steps: Step[] = [];
    let have = 0;
    for (const rows of sizes) {
      await client.query('drop index if exists sheratan_bench.crossover_idx');
      await client.query(`insert into sheratan_bench.crossover select g, ${vectorSql(n)} from generate_series(${have + 1}, ${rows}) g`);
      have = rows;
      const t0 = performance.now();
      await client.query(`create index crossover_idx on sheratan_bench.crossover using hnsw (${column})`);
      const build = (performance.now() - t0) / 1000;
      await client.query('analyze sheratan_bench.crossover');
      const plan = (await client.query(`explain (costs off) ${topK.replaceAll('$1', `'${qs[0]}'::vector`)}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
      const time = async (): Promise<number> => {
        const lat: number[] = [];
        for (const q of [qs[0]!, ...qs]) {
          const t = performance.now();
          await client.query(topK, [q]);
          lat.push(performance.now() - t);
        }
        return percentile(lat.slice(1), 50); // the first one warms the cache
      };
      // Each path forced in turn, for this comparison only (the store never forces the planner).
      await client.query('set enable_seqscan = off');
      const index = await time();
      await client.query('reset enable_seqscan; set enable_indexscan = off');
      const exact = await time();
      await client.query('reset enable_indexscan');
      steps.push({
        rows,
        build_s: +build.toFixed(2),
        index_p50_ms: +index.toFixed(2),
        exact_p50_ms: +exact.toFixed(2),
        plan_uses_index: /crossover_idx/.test(plan),
      });
      process.stdout.write(
        `${backend} ${n} dims ${String(rows).padStart(6)} rows: index ${index.toFixed(2)} ms, exact ${exact.toFixed(2)} ms, build ${build.toFixed(1)} s, planner picks the index: ${/crossover_idx/.test(plan)}\n`,
      );
    }
    const wins = steps.find((s, i) => steps.slice(i).every((t) => t.index_p50_ms < t.exact_p50_ms));
    out[String(n)] = { steps, index_wins_from: wins?.rows ?? null };
  }
} finally {
  await client.query('drop schema if exists sheratan_bench cascade').catch(() => undefined);
  await client.end();
  await running?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
const file = path.join(import.meta.dirname, 'results', `ann-crossover-${backend}.json`);
mkdirSync(path.dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), backend, queries, dims: out }, null, 2)}\n`);
process.stdout.write(`wrote ${file}\n`);
