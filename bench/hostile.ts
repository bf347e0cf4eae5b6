// npm run bench:hostile [-- --quick]: the hostile-input invariants of issue 25
// measured on a production gateway (`npm start` as its own process, NODE_ENV=
// production) on the embedded engine, or on a server with TEST_DATABASE_URL
// (a superuser URL, as the test suite takes). Prints a table and writes
// bench/results/hostile-<backend>.json. Figures to read, never assertions:
//   - anonymous 15 MiB documents: time to the refusal, the gateway's heap
//     before and after, its event-loop delay (its own /metrics) and /healthz
//     latency measured from outside throughout;
//   - 100 sockets sending their bodies slowly (half with a token) while
//     another tenant searches: that tenant's p50/p99 and any non-200;
//   - first: null nested in similarChunks: refused exactly as first: 10;
//   - pipelined floods (issue 25's last finding): 20 sockets, half of them
//     with a token, each writing 3,000 requests at once (half never read;
//     a closed socket is opened again at once) while another tenant sends one
//     query at a time, each on a new connection: that tenant's p50/p99/max,
//     the gateway's heap and event-loop delay, and what the attackers got.
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

process.env.GRAPHILE_ENV ??= 'production';
const { projectRoot } = await import('../src/config/paths.ts');
const { signToken } = await import('../src/http/token-signing.ts');
const { createTestDatabase, backend, SERVER_JWT_SECRET } = await import('../test/support/backend.ts');
const { startGatewayProcess, postOnce } = await import('../test/support/processes.ts');
const { randomUnit, rng } = await import('../test/support/embeddings.ts');
const { percentile } = await import('./support.ts');

const quick = process.argv.includes('--quick');
const MiB = 1024 * 1024;
const METRICS_TOKEN = 'sheratan-bench-metrics-token-0123456789';

const database = await createTestDatabase();
const env = {
  ...database.env,
  NODE_ENV: 'production',
  JWT_SECRET: SERVER_JWT_SECRET,
  METRICS_TOKEN,
  EMBEDDING_PROVIDER: 'none',
  LOG_LEVEL: 'warn',
};
if (database.env.DATABASE_URL) {
  const { parseConfig } = await import('../src/config/config.ts');
  const { migrateTestDatabase } = await import('../test/support/backend.ts');
  await migrateTestDatabase(parseConfig(env));
}
const gateway = await startGatewayProcess(env);
const token = (tenant: string): string => signToken(SERVER_JWT_SECRET, { role: 'sheratan_app', tenant, sub: 'bench' });
const e = randomUnit(384, rng(7));

/** The gateway's own gauges from /metrics (reading them resets its event-loop histogram). */
async function gauges(): Promise<{ heapMiB: number; lagMaxMs: number }> {
  const text = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { heapMiB: value('sheratan_nodejs_heap_size_used_bytes') / MiB, lagMaxMs: value('sheratan_nodejs_eventloop_lag_max_seconds') * 1000 };
}

/** /healthz every 10 ms (fetch keeps its connection alive) until stopped; resolves with the latencies. */
function probeHealth(): { stop(): Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await fetch(`${gateway.url}/healthz`, { keepalive: true }).then((r) => r.arrayBuffer());
      times.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return times;
    },
  };
}

function rawPost(body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      `${gateway.url}/graphql`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, ms: performance.now() - started }));
      },
    );
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

/** One pipelined request of the flood: /healthz, an anonymous-safe `{ __typename }` or a list, as issue 25's attacker sent. */
function pipelinedRequest(next: () => number, bearer: string | null): string {
  if (next() < 0.3) return 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const body = JSON.stringify({ query: next() < 0.5 ? '{ __typename }' : '{ allDocuments { totalCount } }' });
  const auth = bearer ? `Authorization: Bearer ${bearer}\r\n` : '';
  return `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The pipelining scenario (4.): floods for `ms` while another tenant queries one request at a time, each on a new connection. */
async function pipelinedFlood(ms: number) {
  const SOCKETS = 20;
  const DEPTH = 3_000;
  const next = rng(2525);
  const attackerToken = token('bench-attacker');
  let running = true;
  let connections = 0;
  let attackerAnswers = 0;
  let attackerRefusals = 0;
  const open = new Set<net.Socket>();
  const attack = (i: number): void => {
    if (!running) return;
    connections++;
    const socket = net.connect(gateway.port, '127.0.0.1');
    open.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      open.delete(socket);
      attack(i);
    });
    // Half the sockets never read (their answers fill the gateway's buffers), half read and count.
    if (i % 4 < 2) socket.pause();
    else
      socket.on('data', (d: Buffer) => {
        const text = d.toString('latin1');
        attackerAnswers += text.split('HTTP/1.1 ').length - 1;
        attackerRefusals += text.split('PIPELINE_TOO_DEEP').length - 1;
      });
    const bearer = i % 2 ? attackerToken : null;
    socket.write(Array.from({ length: DEPTH }, () => pipelinedRequest(next, bearer)).join(''));
  };
  await gauges(); // resets the event-loop histogram
  const before = await gauges();
  for (let i = 0; i < SOCKETS; i++) attack(i);
  const times: number[] = [];
  const statuses = new Set<number>();
  const started = Date.now();
  while (Date.now() - started < ms) {
    const t0 = performance.now();
    const reply = await postOnce(gateway.url, token('bench-other'), '{ allDocuments { totalCount } }').catch(() => ({ status: 0, body: { errors: [] } }));
    times.push(performance.now() - t0);
    statuses.add(reply.body.errors ? -reply.status : reply.status);
  }
  running = false;
  open.forEach((socket) => socket.destroy());
  const after = await gauges();
  return {
    sockets: SOCKETS,
    depth: DEPTH,
    seconds: ms / 1000,
    connections,
    attackerAnswers,
    attackerRefusals,
    queries: times.length,
    // A negative status: the answer carried GraphQL errors.
    statuses: [...statuses],
    victimMsP50: percentile(times, 50),
    victimMsP99: percentile(times, 99),
    victimMsMax: Math.max(...times),
    heapMiBBefore: before.heapMiB,
    heapMiBAfter: after.heapMiB,
    eventLoopDelayMaxMs: after.lagMaxMs,
  };
}

const result: Record<string, unknown> = { backend, quick, at: new Date().toISOString() };
try {
  // Seed one tenant's document for the searches.
  const seeded = await postOnce(
    gateway.url,
    token('bench-other'),
    'mutation ($c: [ChunkInput]!) { ingestDocument(input: { title: "b", chunks: $c }) { clientMutationId } }',
    {
      c: Array.from({ length: 20 }, (_, i) => ({ content: `c${i}`, embedding: randomUnit(384, rng(i)) })),
    },
  );
  if (seeded.body.errors) throw new Error(seeded.body.errors[0]!.message);

  // 1. Giant documents: 15 MiB without a token (refused from Content-Length),
  // then 3.8 MiB with one (read, then refused by MAX_DOCUMENT_BYTES), measured apart.
  const giant = Buffer.from(JSON.stringify({ query: `{ ${'a: __typename '.repeat(Math.ceil((15 * MiB) / 15))} }` }));
  const tokenDocument = Buffer.from(JSON.stringify({ query: `{ ${'a: __typename '.repeat(Math.ceil((3.8 * MiB) / 15))} }` }));
  const phase = async (body: Buffer, headers: Record<string, string>) => {
    await gauges(); // resets the event-loop histogram
    const before = await gauges();
    const probe = probeHealth();
    const times: number[] = [];
    const statuses = new Set<number>();
    for (let i = 0; i < (quick ? 5 : 20); i++) {
      const reply = await rawPost(body, headers);
      times.push(reply.ms);
      statuses.add(reply.status);
    }
    const health = await probe.stop();
    const after = await gauges();
    return {
      requests: times.length,
      // 0: the socket closed while the client was still sending the body refused from its Content-Length.
      statuses: [...statuses],
      refusalMsP50: percentile(times, 50),
      refusalMsMax: Math.max(...times),
      heapMiBBefore: before.heapMiB,
      heapMiBAfter: after.heapMiB,
      eventLoopDelayMaxMs: after.lagMaxMs,
      healthzMsP99: percentile(health, 99),
      healthzMsMax: Math.max(...health),
    };
  };
  result.anonymous15MiB = await phase(giant, {});
  result.token3_8MiB = await phase(tokenDocument, { authorization: `Bearer ${token('bench-attacker')}` });

  // 2. Slow bodies while another tenant searches.
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 100; i++) {
    const socket = net.connect(gateway.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const auth = i % 2 ? `Authorization: Bearer ${token('bench-attacker')}\r\n` : '';
    socket.write(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: 100000\r\n\r\n{"query":`);
    sockets.push(socket);
  }
  const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write(' ')), 500);
  const searchTimes: number[] = [];
  const searchStatuses = new Set<number>();
  const until = Date.now() + (quick ? 5_000 : 20_000);
  const agent = new http.Agent({ keepAlive: true });
  while (Date.now() < until) {
    const started = performance.now();
    const reply = await postOnce(
      gateway.url,
      token('bench-other'),
      'query ($q: Vector!) { searchDocumentChunks(embedding: $q, first: 5) { distance } }',
      { q: e },
      agent,
    );
    searchTimes.push(performance.now() - started);
    searchStatuses.add(reply.body.errors ? -reply.status : reply.status);
  }
  clearInterval(drip);
  sockets.forEach((s) => s.destroy());
  agent.destroy();
  result.slowBodies = {
    sockets: sockets.length,
    searches: searchTimes.length,
    statuses: [...searchStatuses],
    searchMsP50: percentile(searchTimes, 50),
    searchMsP99: percentile(searchTimes, 99),
  };

  // 3. first: null at depth.
  const nested = (depth: number, first: string): string => {
    let inner = 'rowId';
    for (let i = 0; i < depth; i++) inner = `similarChunks(first: ${first}) { chunk { ${inner} } }`;
    return `query ($q: Vector!) { searchDocumentChunks(embedding: $q, first: ${first}) { chunk { ${inner} } } }`;
  };
  const answers: Record<string, string> = {};
  for (let depth = 0; depth <= 5; depth++) {
    for (const first of ['null', '10']) {
      const reply = await postOnce(gateway.url, token('bench-other'), nested(depth, first), { q: e });
      answers[`depth ${depth}, first: ${first}`] = reply.body.errors ? String(reply.body.errors[0]!.extensions?.code ?? reply.body.errors[0]!.message) : 'ran';
    }
  }
  result.firstNull = answers;

  // 4. Pipelined floods while another tenant queries.
  result.pipelining = await pipelinedFlood(quick ? 5_000 : 15_000);
} finally {
  gateway.child.kill('SIGTERM');
  await gateway.exited;
  await database.drop();
}

console.log(`hostile input, ${backend}, production gateway${quick ? ' (--quick)' : ''}`);
for (const [name, label] of [
  ['anonymous15MiB', '15 MiB documents without a token'],
  ['token3_8MiB', '3.8 MiB documents with a token'],
] as const) {
  const g = result[name] as Record<string, number | number[]>;
  console.log(
    `  ${label}: ${g.requests} requests, statuses ${String(g.statuses)}, answered in p50 ${(g.refusalMsP50 as number).toFixed(1)} ms / max ${(g.refusalMsMax as number).toFixed(1)} ms`,
  );
  console.log(
    `    gateway heap ${(g.heapMiBBefore as number).toFixed(1)} → ${(g.heapMiBAfter as number).toFixed(1)} MiB, event-loop delay max ${(g.eventLoopDelayMaxMs as number).toFixed(1)} ms, /healthz p99 ${(g.healthzMsP99 as number).toFixed(1)} ms, max ${(g.healthzMsMax as number).toFixed(1)} ms`,
  );
}
const s = result.slowBodies as Record<string, number | number[]>;
console.log(
  `  100 slow-body sockets: another tenant ran ${s.searches} searches, statuses ${String(s.statuses)}, p50 ${(s.searchMsP50 as number).toFixed(1)} ms, p99 ${(s.searchMsP99 as number).toFixed(1)} ms`,
);
for (const [k, v] of Object.entries(result.firstNull as Record<string, string>)) console.log(`  ${k}: ${v}`);
const p = result.pipelining as Record<string, number | number[]>;
console.log(
  `  ${p.sockets} sockets × ${p.depth} pipelined requests (${p.connections} connections in ${p.seconds} s): another tenant's ${p.queries} queries, ` +
    `statuses ${String(p.statuses)}, p50 ${(p.victimMsP50 as number).toFixed(1)} ms, p99 ${(p.victimMsP99 as number).toFixed(1)} ms, max ${(p.victimMsMax as number).toFixed(1)} ms`,
);
console.log(
  `    attackers read ${p.attackerAnswers} answers (${p.attackerRefusals} of them 429 PIPELINE_TOO_DEEP); gateway heap ${(p.heapMiBBefore as number).toFixed(1)} → ${(p.heapMiBAfter as number).toFixed(1)} MiB, event-loop delay max ${(p.eventLoopDelayMaxMs as number).toFixed(1)} ms`,
);
const out = path.join(projectRoot, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, `hostile-${backend}.json`), `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote bench/results/hostile-${backend}.json`);
