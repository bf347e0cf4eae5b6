// npm run bench:workers [-- --requests 3000 --workers 1,2]: what WORKERS=N buys
// (issue 30, item 1). For each N, `npm start` as its own process (NODE_ENV=
// production, WORKERS=N) on the embedded engine, or on a server with
// TEST_DATABASE_URL (a superuser URL, as the test suite takes), serves
// top-10 searches over 2,000 chunks of 384 dimensions to 8 clients at once
// (closed loop, keep-alive, the benchmark's own load generator in a process
// of its own: bench/load.ts), --requests of them; prints QPS and latencies and
// writes bench/results/workers-<backend>.json. Figures to read, never
// assertions: on this 2-core machine the load generator shares the cores.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

process.env.GRAPHILE_ENV ??= 'production';
const { projectRoot } = await import('../src/config/paths.ts');
const { parseConfig } = await import('../src/config/config.ts');
const { APP_ROLE } = await import('../src/config/roles.ts');
const { signToken } = await import('../src/http/token-signing.ts');
const { withPgClient } = await import('../src/database/connect.ts');
const { createTestDatabase, migrateTestDatabase, backend, SERVER_JWT_SECRET } = await import('../test/support/backend.ts');
const { startGatewayProcess } = await import('../test/support/processes.ts');
const { insertRandomChunks, randomUnit, rng } = await import('../test/support/embeddings.ts');
const { measureHttp, percentile } = await import('./support.ts');

const { values } = parseArgs({ options: { requests: { type: 'string', default: '3000' }, workers: { type: 'string', default: '1,2' } } });
const requests = Number(values.requests);
const counts = values.workers.split(',').map(Number);
const TENANT = 'bench-workers';
const CONCURRENCY = 8;

const database = await createTestDatabase();
const env = { ...database.env, NODE_ENV: 'production', JWT_SECRET: SERVER_JWT_SECRET, METRICS_PUBLIC: 'true', EMBEDDING_PROVIDER: 'none', LOG_LEVEL: 'warn' };
if (database.env.DATABASE_URL) await migrateTestDatabase(parseConfig(env));
const token = signToken(SERVER_JWT_SECRET, { role: APP_ROLE, tenant: TENANT, sub: 'bench' });
const next = rng(11);
const queries = Array.from({ length: 50 }, () => ({
  query: 'query Search($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { distance chunk { rowId } } }',
  variables: { e: randomUnit(384, next) },
}));

const results: Array<{ workers: number; qps: number; p50Ms: number; p95Ms: number; p99Ms: number; requests: number }> = [];
let loaded = false;
for (const workers of counts) {
  process.stdout.write(`WORKERS=${workers}: starting the gateway… `);
  const gw = await startGatewayProcess({ ...env, WORKERS: String(workers) });
  try {
    if (!loaded) {
      // The data once, through the owner (embedded: the running gateway's engine), then statistics for the planner.
      await withPgClient(database.env.DATABASE_URL ?? (await ownerUrlOf(gw.url)), async (c) => {
        for (let d = 0; d < 100; d++) await insertRandomChunks(c, TENANT, 20, `bench document ${d}`);
        await c.query('analyze sheratan.document_chunks');
      });
      loaded = true;
    }
    if (workers > 1) {
      for (let i = 0; i < 600 && !gw.output().includes('gateway workers listening'); i++) await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(`measuring ${requests} requests from ${CONCURRENCY} clients… `);
    const bodies = Array.from({ length: requests }, (_, i) => queries[i % queries.length]);
    const { lat, qps } = await measureHttp(`${gw.url}/graphql`, token, bodies, CONCURRENCY, 100);
    const row = { workers, qps: Math.round(qps), p50Ms: percentile(lat, 50), p95Ms: percentile(lat, 95), p99Ms: percentile(lat, 99), requests: lat.length };
    results.push(row);
    console.log(`${row.qps} req/s, p50 ${row.p50Ms.toFixed(2)} ms, p95 ${row.p95Ms.toFixed(2)} ms`);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
}
await database.drop();

console.log(`\nbackend ${backend}, ${CONCURRENCY} clients, top-10 search over 2,000 chunks × 384`);
console.log('workers   req/s   p50 ms   p95 ms   p99 ms');
for (const r of results)
  console.log(
    `${String(r.workers).padEnd(9)} ${String(r.qps).padStart(5)}   ${r.p50Ms.toFixed(2).padStart(6)}   ${r.p95Ms.toFixed(2).padStart(6)}   ${r.p99Ms.toFixed(2).padStart(6)}`,
  );
const out = path.join(projectRoot, 'bench', 'results', `workers-${backend}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ backend, cores: (await import('node:os')).availableParallelism(), concurrency: CONCURRENCY, requests, results, at: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`wrote ${path.relative(projectRoot, out)}`);

/** Embedded: the owner's URL of the engine the gateway serves (its data directory's lock file names the port). */
async function ownerUrlOf(_url: string): Promise<string> {
  const { attachOrStartEmbedded } = await import('@sheratan/pglite-server');
  const engine = await attachOrStartEmbedded(database.env.SHERATAN_DATA_DIR!, 'bench');
  return engine.url();
}
