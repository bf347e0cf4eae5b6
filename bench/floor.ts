// `npm run bench:floor`: where a GraphQL search's time goes, piece by piece,
// against the raw query: the socket round trip, the search function as the
// app role (RLS, search log), the log insert alone, a bare GraphQL request,
// a one-row GraphQL read, and the whole GraphQL search (4,000 chunks, p50).
import { rmSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import { parseConfig } from '../src/config.ts';
import { startGateway } from '../src/server.ts';
import { signToken } from '../src/auth.ts';
import { inspectVector, searchSettings } from '../src/vector.ts';
import { tempDataDir } from '../test/support/harness.ts';
import { topicalVectors, toPgVector } from '../test/support/embeddings.ts';

const dataDir = tempDataDir();
const running = await startGateway(parseConfig({ SHERATAN_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }), { port: 0 });
const owner = new pg.Client(running.db.ownerUrl); await owner.connect();
const vecs = topicalVectors(4000, 384, 2024, 64, 1.0);
const doc = await owner.query(`insert into sheratan.documents (tenant, title) values ('t', 'bulk') returning id`);
for (let s = 0; s < 4000; s += 500) {
  const params: unknown[] = []; const values: string[] = [];
  for (let i = s; i < s + 500; i++) { params.push(i, toPgVector(vecs[i]!)); values.push(`('t', '${doc.rows[0].id}', $${params.length - 1}, 'c', $${params.length}::vector)`); }
  await owner.query(`insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding) values ${values.join(',')}`, params);
}
await owner.query('analyze sheratan.document_chunks');
const settings = searchSettings(running.config, await inspectVector(running.db.ownerUrl));
const queries = topicalVectors(200, 384, 4048, 64, 1.0).map(toPgVector);
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2);
async function time(label: string, fn: (q: string) => Promise<unknown>) {
  for (const q of queries.slice(0, 20)) await fn(q);
  const lat: number[] = [];
  for (const q of queries) { const t = performance.now(); await fn(q); lat.push(performance.now() - t); }
  console.log(label.padEnd(60), p50(lat), 'ms');
}
const tuned = new pg.Client(running.db.ownerUrl); await tuned.connect();
for (const [k, v] of Object.entries(settings)) await tuned.query(`select set_config($1, $2, false)`, [k, v]);
await time('raw ORDER BY <=> LIMIT 10 (socket, gateway settings)', (q) => tuned.query("select id, embedding <=> $1 as distance from sheratan.document_chunks where tenant = 't' order by embedding <=> $1 limit 10", [q]));
const app = new pg.Client(running.db.ownerUrl); await app.connect();
await app.query(`begin`); await app.query(`select set_config('role', 'sheratan_app', true), set_config('jwt.claims.tenant', 't', true), set_config('jwt.claims.sub', 'u', true)`);
for (const [k, v] of Object.entries(settings)) await app.query(`select set_config($1, $2, true)`, [k, v]);
await time('search_document_chunks(q, 10) as the app role (socket)', (q) => app.query('select id from sheratan.search_document_chunks($1::vector, 10)', [q]));
await time('log_search(...) alone', () => app.query(`select sheratan_private.log_search(null, 10, '{}', 10, 0.9, 1.0)`));
await time('select 1 (socket round trip)', () => app.query('select 1'));
await app.query('rollback');
const token = signToken(running.config.jwtSecret!, { role: 'sheratan_app', tenant: 't', sub: 'u' });
const agent = new http.Agent({ keepAlive: true });
const post = (body: string) => new Promise<string>((resolve, reject) => {
  const req = http.request(`${running.url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => { let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => resolve(t)); });
  req.on('error', reject); req.end(body);
});
await time('GraphQL { __typename } over HTTP', () => post(JSON.stringify({ query: '{ __typename }' })));
await time('GraphQL { allDocuments(first: 1) { nodes { title } } }', () => post(JSON.stringify({ query: '{ allDocuments(first: 1) { nodes { title } } }' })));
await time('GraphQL searchDocumentChunks(first: 10) { distance chunk { rowId } }', (q) => post(JSON.stringify({ query: 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { distance chunk { rowId } } }', variables: { e: JSON.parse(q) } })));
agent.destroy();
await owner.end();
await tuned.end();
await app.end();
await running.stop();
rmSync(dataDir, { recursive: true, force: true });
