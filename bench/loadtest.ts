// `npm run loadtest`: a load generator in this process against a gateway in
// another (started here on loopback with a fresh embedded database, or the
// one at --url). Open-loop: requests go out at a fixed arrival rate whatever
// the answers do, in a realistic mix (70 % search, 20 % document reads with
// aggregates, 10 % ingest), for a fixed time, twice (memory must not grow
// from one run to the next). Prints a report, writes
// bench/results/loadtest.json, and exits 1 if a target is missed.
//
//   npm run loadtest                       # 40 req/s, 30 s, two runs
//   npm run loadtest -- --rate 60 --duration 10 --runs 1
//   npm run loadtest -- --url http://127.0.0.1:5678 --secret "$JWT_SECRET"
export {};
const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
const os = await import('node:os');
const path = await import('node:path');
const { default: http } = await import('node:http');
const { parseArgs } = await import('node:util');
const { signToken } = await import('../src/http/token-signing.ts');
const { projectRoot } = await import('../src/config/paths.ts');
const { rng, topicalVectors } = await import('../test/support/embeddings.ts');
const { postOnce, startGatewayProcess } = await import('../test/support/processes.ts');
const { percentile } = await import('./support.ts');

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '40' },
    duration: { type: 'string', default: '30' },
    runs: { type: 'string', default: '2' },
    url: { type: 'string' },
    secret: { type: 'string' },
    'max-in-flight': { type: 'string', default: '200' },
  },
});
const RATE = Number(args.rate);
const DURATION_S = Number(args.duration);
const RUNS = Number(args.runs);
const MAX_IN_FLIGHT = Number(args['max-in-flight']);
for (const [name, v] of [
  ['rate', RATE],
  ['duration', DURATION_S],
  ['runs', RUNS],
  ['max-in-flight', MAX_IN_FLIGHT],
] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, not ${String(v)}`);
}
const DIM = 384;

// ---- the gateway under test
const dataDir = args.url ? null : mkdtempSync(path.join(os.tmpdir(), 'sheratan-loadtest-'));
const secret = args.secret ?? 'loadtest-secret-0123456789abcdef0123456789';
const gateway = args.url
  ? null
  : await startGatewayProcess({
      SHERATAN_DATA_DIR: dataDir!,
      JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      METRICS_PUBLIC: 'true',
      EMBEDDING_PROVIDER: 'none',
    });
const base = args.url ?? gateway!.url;
const token = signToken(secret, { role: 'sheratan_app', tenant: `loadtest-${Date.now()}`, sub: 'loadtest' });

const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
interface Answer {
  status: number;
  errors: Array<{ message: string; extensions?: Record<string, unknown> }>;
}
const post = async (query: string, variables: Record<string, unknown>): Promise<Answer> => {
  const reply = await postOnce(base, token, query, variables, agent);
  return { status: reply.status, errors: reply.body.errors ?? [] };
};

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}

// ---- the mix
const vectors = topicalVectors(2000, DIM, 515, 32, 1.0);
const words = ['vector', 'index', 'tenant', 'search', 'chunk', 'graph', 'query', 'engine', 'policy', 'cosine'];
const SEARCH = 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { similarity chunk { content document { title } } } }';
const HYBRID = 'query ($t: String, $e: Vector) { hybridSearchDocumentChunks(queryText: $t, embedding: $e, first: 10) { score chunk { content } } }';
const READ = `{ allDocuments(first: 10, orderBy: CREATED_AT_DESC) {
  totalCount
  aggregates { distinctCount { source } }
  groupedAggregates(groupBy: SOURCE) { keys distinctCount { rowId } }
  nodes { title source chunks { totalCount } }
} }`;
const INGEST = 'mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }';
let ingested = 0;
const ingest = () => {
  const n = ingested++;
  const next = rng(n + 1);
  return post(INGEST, {
    input: {
      title: `load ${n}`,
      source: `source-${n % 5}`,
      chunks: Array.from({ length: 5 }, (_, i) => ({
        content: `${words[Math.floor(next() * words.length)]} ${words[Math.floor(next() * words.length)]} part ${i}`,
        embedding: vectors[(n * 5 + i) % vectors.length],
      })),
    },
  });
};
type Kind = 'search' | 'read' | 'ingest';
function request(i: number): [Kind, () => Promise<Answer>] {
  const r = (i * 7919) % 100; // a fixed, well-spread sequence: the same mix every run
  const q = vectors[(i * 31) % vectors.length]!;
  if (r < 60) return ['search', () => post(SEARCH, { e: q })];
  if (r < 70) return ['search', () => post(HYBRID, { t: words[i % words.length], e: q })];
  if (r < 90) return ['read', () => post(READ, {})];
  return ['ingest', ingest];
}

for (let d = 0; d < 20; d++) await ingest(); // something to search and read

// ---- one run: a fixed arrival rate for DURATION_S seconds
interface RunResult {
  offered_rps: number;
  achieved_rps: number;
  requests: number;
  latency_ms: { p50: number; p95: number; p99: number; max: number };
  by_kind: Record<Kind, { count: number; p50_ms: number; p99_ms: number }>;
  http_5xx: number;
  http_other_errors: number;
  graphql_errors: number;
  connection_errors: number;
  shed_client_side: number;
  memory_after_mb: { rss: number; heap_used: number };
  /** The lowest JS heap seen during the run: live memory, without garbage not yet collected. */
  heap_trough_mb: number;
}
/** A percentile in ms, to 0.1 ms (NaN when nothing was measured). */
const ms = (xs: number[], p: number): number => (xs.length ? Math.round(percentile(xs, p) * 10) / 10 : NaN);

async function run(): Promise<RunResult> {
  const total = Math.round(RATE * DURATION_S);
  const latencies: Record<Kind, number[]> = { search: [], read: [], ingest: [] };
  let http5xx = 0;
  let httpOther = 0;
  let gqlErrors = 0;
  let connErrors = 0;
  let shed = 0;
  let inFlight = 0;
  const firstErrors: string[] = [];
  const pending: Array<Promise<void>> = [];
  // The heap's troughs (right after collections) track live memory; sample once a second.
  const heapSamples: number[] = [];
  const sampler = setInterval(() => {
    metric('sheratan_nodejs_heap_size_used_bytes').then(
      (v) => heapSamples.push(v),
      () => undefined,
    );
  }, 1000);
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (inFlight >= MAX_IN_FLIGHT) {
      shed++; // the gateway is not keeping up; do not pile on without bound
      continue;
    }
    const [kind, send] = request(i);
    inFlight++;
    const t0 = performance.now();
    pending.push(
      send()
        .then((answer) => {
          latencies[kind].push(performance.now() - t0);
          if (answer.status >= 500) http5xx++;
          else if (answer.status !== 200) httpOther++;
          if (answer.errors.length) {
            gqlErrors++;
            if (firstErrors.length < 5) firstErrors.push(`${kind} ${answer.status}: ${answer.errors[0]!.message}`);
          }
        })
        .catch((err: Error) => {
          connErrors++;
          if (firstErrors.length < 5) firstErrors.push(`${kind}: ${err.message}`);
        })
        .finally(() => inFlight--),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  for (const e of firstErrors) process.stderr.write(`  error: ${e}\n`);
  const all = [...latencies.search, ...latencies.read, ...latencies.ingest];
  const byKind = Object.fromEntries(
    (Object.keys(latencies) as Kind[]).map((k) => [k, { count: latencies[k].length, p50_ms: ms(latencies[k], 50), p99_ms: ms(latencies[k], 99) }]),
  ) as RunResult['by_kind'];
  return {
    offered_rps: RATE,
    achieved_rps: Math.round((all.length / elapsed) * 10) / 10,
    requests: all.length + connErrors,
    latency_ms: { p50: ms(all, 50), p95: ms(all, 95), p99: ms(all, 99), max: ms(all, 100) },
    by_kind: byKind,
    http_5xx: http5xx,
    http_other_errors: httpOther,
    graphql_errors: gqlErrors,
    connection_errors: connErrors,
    shed_client_side: shed,
    memory_after_mb: {
      rss: Math.round((await metric('sheratan_process_resident_memory_bytes')) / 1e5) / 10,
      heap_used: Math.round((await metric('sheratan_nodejs_heap_size_used_bytes')) / 1e5) / 10,
    },
    heap_trough_mb: Math.round(Math.min(...heapSamples) / 1e5) / 10,
  };
}

const memoryBefore = {
  rss: Math.round((await metric('sheratan_process_resident_memory_bytes')) / 1e5) / 10,
  heap_used: Math.round((await metric('sheratan_nodejs_heap_size_used_bytes')) / 1e5) / 10,
};
const runs: RunResult[] = [];
for (let r = 0; r < RUNS; r++) {
  process.stderr.write(`run ${r + 1}/${RUNS}: ${RATE} req/s for ${DURATION_S} s\n`);
  runs.push(await run());
}

// ---- targets
const P99_BOUND_MS = 1000;
const last = runs.at(-1)!;
// RSS includes the embedded engine's WASM memory, which grows with the data
// (this test ingests) and is never returned; the JS heap's troughs are the
// gateway's own live memory, and they must not grow from run to run.
const growth = runs.length > 1 ? Math.round((last.heap_trough_mb - runs[0]!.heap_trough_mb) * 10) / 10 : null;
const checks = [
  { target: 'zero HTTP 5xx', ok: runs.every((x) => x.http_5xx === 0) },
  { target: 'zero GraphQL errors', ok: runs.every((x) => x.graphql_errors === 0 && x.http_other_errors === 0 && x.connection_errors === 0) },
  { target: `rate held (>= 95 % of ${RATE} req/s answered, none shed)`, ok: runs.every((x) => x.shed_client_side === 0 && x.achieved_rps >= 0.95 * RATE) },
  { target: `p99 <= ${P99_BOUND_MS} ms`, ok: runs.every((x) => x.latency_ms.p99 <= P99_BOUND_MS) },
  ...(growth === null ? [] : [{ target: 'memory flat (JS heap trough grows < 10 % from run 1 to the last)', ok: growth < 0.1 * runs[0]!.heap_trough_mb }]),
];
const result = {
  gateway: args.url ?? `child process on ${base}, fresh embedded database`,
  mix: '60 % searchDocumentChunks, 10 % hybridSearchDocumentChunks, 20 % allDocuments with aggregates, 10 % ingestDocument (5 chunks)',
  rate_rps: RATE,
  duration_s: DURATION_S,
  memory_before_mb: memoryBefore,
  runs,
  heap_trough_growth_mb_between_runs: growth,
  checks,
  measured_at: new Date().toISOString(),
};
const out = path.join(projectRoot, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'loadtest.json'), `${JSON.stringify(result, null, 2)}\n`);

const lines = [
  `load test: ${RATE} req/s offered for ${DURATION_S} s, ${RUNS} run(s), against ${result.gateway}`,
  `mix: ${result.mix}`,
  '',
  'run   req/s   p50 ms   p95 ms   p99 ms   max ms   5xx   gql errors   conn errors   shed   rss MB   heap MB   heap trough MB',
  ...runs.map(
    (x, i) =>
      `${String(i + 1).padEnd(4)} ${String(x.achieved_rps).padStart(6)} ${String(x.latency_ms.p50).padStart(8)} ${String(x.latency_ms.p95).padStart(8)} ${String(x.latency_ms.p99).padStart(8)} ${String(x.latency_ms.max).padStart(8)} ${String(x.http_5xx).padStart(5)} ${String(x.graphql_errors).padStart(12)} ${String(x.connection_errors).padStart(13)} ${String(x.shed_client_side).padStart(6)} ${String(x.memory_after_mb.rss).padStart(8)} ${String(x.memory_after_mb.heap_used).padStart(9)} ${String(x.heap_trough_mb).padStart(16)}`,
  ),
  `by kind (last run): ${Object.entries(last.by_kind)
    .map(([k, v]) => `${k} ${v.count} × p50 ${v.p50_ms} / p99 ${v.p99_ms} ms`)
    .join('; ')}`,
  `memory before: rss ${memoryBefore.rss} MB, heap ${memoryBefore.heap_used} MB${growth === null ? '' : `; heap trough growth from run 1 to run ${RUNS}: ${growth} MB`}`,
  '',
  ...checks.map((c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.target}`),
  'wrote bench/results/loadtest.json',
  '',
];
process.stdout.write(lines.join('\n'));

agent.destroy();
if (gateway) {
  gateway.child.kill('SIGTERM');
  const exit = await gateway.exited;
  if (exit.code !== 0) process.stderr.write(`the gateway exited with ${exit.code ?? exit.signal}:\n${gateway.output().slice(-2000)}\n`);
  rmSync(dataDir!, { recursive: true, force: true });
}
process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
