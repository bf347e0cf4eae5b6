// `npm run bench:floor`: where a GraphQL search's time goes, piece by piece,
// against the raw query: the socket round trip, the search function as the
// app role (RLS, search log), the log insert alone, a bare GraphQL request,
// a one-row GraphQL read, and the whole GraphQL search (4,000 chunks, p50).
// Runs on the embedded engine, or on DATABASE_URL when set (its rows are a
// tenant of its own, removed at the end). Beside them, the `http_pg` peer
// (bench/peers/): the same search over bare HTTP + pg, and its request that
// only checks the token.
import { rmSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import { loadConfig } from '../src/config/config.ts';
import { startGateway } from '../src/http/start.ts';
import { signToken } from '../src/http/token-signing.ts';
import { APP_ROLE } from '../src/config/roles.ts';
import { searchSettings } from '../src/database/vector-column.ts';
import { tempDataDir } from '../test/support/harness.ts';
import { topicalVectors, toPgVector } from '../test/support/embeddings.ts';
import { benchConfig, graphqlClient, insertDocument, percentile, postJson, removeBenchTenants, startPeer } from './support.ts';

const TENANT = `bench-floor-${process.pid}`;
const dataDir = tempDataDir();
const running = await startGateway({ ...benchConfig(loadConfig), dataDir, logLevel: 'silent' }, { port: 0 });
console.log(`backend: ${running.db.backend}, 4,000 chunks × 384, p50 of 200 queries`);
const owner = new pg.Client(running.db.ownerUrl);
await owner.connect();
const vectors = topicalVectors(4000, 384, 2024, 64, 1.0);
for (let start = 0; start < vectors.length; start += 500) {
  await insertDocument(
    owner,
    TENANT,
    `bulk ${start}`,
    vectors.slice(start, start + 500).map((embedding) => ({ content: 'chunk', embedding })),
  );
}
await owner.query('analyze sheratan.document_chunks');

const queries = topicalVectors(200, 384, 4048, 64, 1.0);
async function time(label: string, fn: (q: number[]) => Promise<unknown>): Promise<void> {
  for (const q of queries.slice(0, 20)) await fn(q); // warm plans and caches
  const lat: number[] = [];
  for (const q of queries) {
    const started = performance.now();
    await fn(q);
    lat.push(performance.now() - started);
  }
  console.log(label.padEnd(60), percentile(lat, 50).toFixed(2), 'ms');
}

// Both SQL clients run at the gateway's accuracy settings; `app` also as the
// gateway's role and claims, in one transaction rolled back at the end (the
// embedded engine serves one transaction at a time, so it opens after `tuned` is done).
const settings = searchSettings(running.config);
const connect = async (url = running.db.ownerUrl): Promise<pg.Client> => {
  const client = new pg.Client(url);
  await client.connect();
  return client;
};
const tuned = await connect();
for (const [k, v] of Object.entries(settings)) await tuned.query('select set_config($1, $2, false)', [k, v]);
await time('raw ORDER BY <=> LIMIT 10 (socket, gateway settings)', (q) =>
  tuned.query(`select id, embedding <=> $1 as distance from sheratan.document_chunks where tenant = $2 order by embedding <=> $1 limit 10`, [
    toPgVector(q),
    TENANT,
  ]),
);

// As the gateway's login (the authenticator; on a server the owner may not become sheratan_app).
const app = await connect(running.db.authUrl);
await app.query('begin');
await app.query(`select set_config('role', $2, true), set_config('jwt.claims.tenant', $1, true), set_config('jwt.claims.sub', 'u', true)`, [TENANT, APP_ROLE]);
for (const [k, v] of Object.entries(settings)) await app.query('select set_config($1, $2, true)', [k, v]);
await time('search_document_chunks(q, 10) as the app role (socket)', (q) =>
  app.query('select id from sheratan.search_document_chunks($1::vector, 10)', [toPgVector(q)]),
);
await time('log_search(...) alone', () => app.query(`select sheratan_private.log_search(null, 10, '{}', 10, 0.9, clock_timestamp())`));
await time('select 1 (socket round trip)', () => app.query('select 1'));
await app.query('rollback');

const agent = new http.Agent({ keepAlive: true });
const graphql = graphqlClient(running.url, signToken(running.config.jwtSecret!, { role: APP_ROLE, tenant: TENANT, sub: 'u' }), agent);
await time('GraphQL { __typename } over HTTP', () => graphql('{ __typename }'));
await time('GraphQL { allDocuments(first: 1) { nodes { title } } }', () => graphql('{ allDocuments(first: 1) { nodes { title } } }'));
await time('GraphQL searchDocumentChunks(first: 10) { distance chunk { rowId } }', (q) =>
  graphql('query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { distance chunk { rowId } } }', { e: q }),
);

const token = signToken(running.config.jwtSecret!, { role: APP_ROLE, tenant: TENANT, sub: 'u' });
const peer = await startPeer('http-pg', running.db.authUrl, running.config.jwtSecret!, 8);
try {
  await time(
    'http_pg peer: GET with the token checked, nothing else',
    () =>
      new Promise<void>((resolve, reject) => {
        http.get(`${peer.url}/ping`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => res.resume().on('end', resolve)).on('error', reject);
      }),
  );
  await time('http_pg peer: the same top-10 search over HTTP + pg', (q) => postJson(`${peer.url}/search`, token, { embedding: q, k: 10 }, agent));
} finally {
  await peer.stop();
}

agent.destroy();
const pool = new pg.Pool({ connectionString: running.db.ownerUrl, max: 1 });
await removeBenchTenants(pool, (tenant) => tenant === TENANT);
await pool.end();
await Promise.all([owner.end(), tuned.end(), app.end()]);
await running.stop();
rmSync(dataDir, { recursive: true, force: true });
