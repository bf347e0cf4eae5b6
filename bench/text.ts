// npm run bench:text [-- --quick]: text in, text out, end to end. Ingest of
// plain text (the gateway chunks and embeds it) against the model alone on the
// same chunks; search by text with the query cache cold and warm against
// search by vector; and /healthz's latency while the chunks embed (the model
// runs in a worker thread, so the event loop should stay free: target p99
// under 50 ms). Prints a table and writes bench/results/text.json (or
// text-quick.json). Runs on the embedded engine unless DATABASE_URL is set,
// with the configured provider (EMBEDDING_PROVIDER, default local). Timings
// are figures to read, never assertions.
//
// The text: documents made of the labelled set's passages (bench/retrieval-set/),
// half of the chunks in small documents (embedded within their ingestDocument
// request) and half in documents above EMBED_SYNC_MAX_CHARS (accepted as
// PENDING and embedded by the gateway's built-in worker), so both paths run.
//
// The model alone and the ingest take turns, a round of each at a time, so
// that both see the same machine (two cores shared with whatever else runs);
// /healthz counts only while the gateway ingests.
//
// --quick (a CI smoke test, under a minute on an idle machine): 100 chunks in
// 2 rounds and 20 queries; the full run: 10,000 chunks in 10 rounds (the
// model alone on a fifth of each round's chunks) and 100 queries.
// --current applies migrations/current.sql first (SQL not committed yet).
import { fork } from 'node:child_process';
import http from 'node:http';

// ---- the /healthz probe: this same file in a child process, so that its
// timings do not depend on the event loop it measures.
if (process.argv[2] === '--probe') {
  const url = process.argv[3]!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  /** [epoch ms when sent, latency ms] per probe. */
  const lat: Array<[number, number]> = [];
  let stopping = false;
  process.on('message', (m) => {
    if (m === 'stop') stopping = true;
  });
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`))));
      });
      req.on('error', reject);
    });
  await get();
  process.send!('ready');
  while (!stopping) {
    const at = Date.now();
    const t = performance.now();
    await get();
    lat.push([at, performance.now() - t]);
    await new Promise((r) => setTimeout(r, 10)); // about 80 probes a second
  }
  agent.destroy();
  process.send!({ lat }, () => process.exit(0));
} else {
  await main();
}

async function main(): Promise<void> {
  process.env.GRAPHILE_ENV ??= 'production';
  const { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { default: pg } = await import('pg');
  const { loadConfig } = await import('../src/config/config.ts');
  const { startGateway } = await import('../src/http/start.ts');
  const { signToken } = await import('../src/http/token-signing.ts');
  const { projectRoot } = await import('../src/config/paths.ts');
  const { APP_ROLE } = await import('../src/config/roles.ts');
  const { createEmbeddingProvider } = await import('../src/embedding/provider.ts');
  const { chunkText } = await import('../src/embedding/chunker.ts');
  const { rng } = await import('../test/support/embeddings.ts');
  const { setLogLevel } = await import('../src/config/log.ts');
  const { graphqlClient, measureHttp, percentile, removeBenchTenants } = await import('./support.ts');

  const quick = process.argv.includes('--quick');
  const CHUNKS = quick ? 100 : 10_000;
  const ROUNDS = quick ? 2 : 10;
  /** The share of each round's chunks the model embeds alone. */
  const MODEL_ALONE_SHARE = quick ? 0.6 : 0.2;
  const QUERIES = quick ? 20 : 100;
  /** Documents ingested at once, as a loader with a few connections would. */
  const INGEST_CONCURRENCY = 4;
  const TENANT = `bench-${process.pid}-${Date.now().toString(36)}`;

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-bench-text-'));
  const config = { ...loadConfig(), dataDir, logLevel: 'silent' as const };
  if (config.embeddingProvider === 'none') {
    throw new Error('bench:text needs an embedding provider: unset EMBEDDING_PROVIDER (local) or set it to openai');
  }
  if (process.argv.includes('--current')) {
    // A migration still in migrations/current.sql (as `npm run db:watch -- --once` applies it), before the gateway builds its schema.
    const { migrateWithCurrent } = await import('../test/support/current-migration.ts');
    setLogLevel('silent');
    await migrateWithCurrent(config, 'bench current.sql');
  }
  const running = await startGateway(config, { port: 0 });
  const token = signToken(running.config.jwtSecret!, { role: APP_ROLE, tenant: TENANT, sub: 'bench' });
  const owner = new pg.Pool({ connectionString: running.db.ownerUrl, max: 2 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: INGEST_CONCURRENCY });
  const graphql = graphqlClient(running.url, token, agent);
  const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
  const stats = (lat: number[]) => ({
    n: lat.length,
    p50_ms: round(percentile(lat, 50)),
    p95_ms: round(percentile(lat, 95)),
    p99_ms: round(percentile(lat, 99)),
    max_ms: round(Math.max(...lat)),
  });

  // ---- text: the labelled set's passages (paragraphs of 150–800 characters)
  // drawn with a fixed seed; small documents of 6 passages, large ones of
  // passages up to 1.2 × EMBED_SYNC_MAX_CHARS, until each kind has half the chunks.
  const passages = readFileSync(path.join(projectRoot, 'bench/retrieval-set/passages.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const questions = readFileSync(path.join(projectRoot, 'bench/retrieval-set/questions.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { question: string }).question);
  const next = rng(26);
  const documents: Array<{ title: string; content: string; chunks: string[] }> = [];
  let chunkCount = 0;
  let largeChunks = 0;
  while (chunkCount < CHUNKS) {
    const large = largeChunks < chunkCount / 2;
    const parts: string[] = [];
    let length = 0;
    while (large ? length < 1.2 * running.config.embedSyncMaxChars : parts.length < 6) {
      parts.push(passages[Math.floor(next() * passages.length)]!);
      length += parts.at(-1)!.length + 2;
    }
    const content = parts.join('\n\n');
    // The chunks the gateway will make of it (same chunker, same settings): what the model alone embeds.
    const chunks = chunkText(content, { maxChars: running.config.chunkMaxChars, overlapChars: running.config.chunkOverlapChars }).map((c) => c.content);
    documents.push({ title: `text ${documents.length}`, content, chunks });
    chunkCount += chunks.length;
    if (large) largeChunks += chunks.length;
  }
  const allChunks = documents.flatMap((d) => d.chunks);
  const chars = allChunks.reduce((n, c) => n + c.length, 0);

  // ---- rounds: the model alone (the same provider the gateway uses, in this
  // process) on a share of the round's chunks, then the round's documents over
  // GraphQL, until every chunk has its vector, while a probe process times /healthz.
  const provider = createEmbeddingProvider(running.config)!;
  let t = performance.now();
  await provider.embed(['warm up: load the model']);
  const modelLoadMs = performance.now() - t;
  const probe = fork(import.meta.filename, ['--probe', `${running.url}/healthz`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    probe.once('message', () => resolve());
    probe.once('exit', (code) => reject(new Error(`the /healthz probe exited (${code}) before it started`)));
  });
  const INGEST = 'mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { embeddingStatus } } }';
  const answered: Record<string, number> = {};
  const embeddedChunks = async (): Promise<number> =>
    (await owner.query('select count(*)::int as n from sheratan.document_chunks where tenant = $1 and embedding is not null', [TENANT])).rows[0].n as number;
  let modelMs = 0;
  let modelChunks = 0;
  let ingestMs = 0;
  let acceptedMs = 0;
  /** Epoch ms [from, to] of each round's ingest. */
  const windows: Array<[number, number]> = [];
  const perRound = Math.ceil(documents.length / ROUNDS);
  let ingested = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const batch = documents.slice(round * perRound, (round + 1) * perRound);
    const roundChunks = batch.flatMap((d) => d.chunks);
    const sample = roundChunks.slice(0, Math.max(1, Math.round(roundChunks.length * MODEL_ALONE_SHARE)));
    t = performance.now();
    await provider.embed(sample);
    modelMs += performance.now() - t;
    modelChunks += sample.length;

    const from = Date.now();
    t = performance.now();
    let nextDoc = 0;
    await Promise.all(
      Array.from({ length: INGEST_CONCURRENCY }, async () => {
        while (nextDoc < batch.length) {
          const d = batch[nextDoc++]!;
          const data = (await graphql(INGEST, { input: { title: d.title, content: d.content, source: 'bench-text' } })) as {
            ingestDocument: { document: { embeddingStatus: string } };
          };
          const status = data.ingestDocument.document.embeddingStatus;
          answered[status] = (answered[status] ?? 0) + 1;
        }
      }),
    );
    acceptedMs += performance.now() - t;
    // Documents above EMBED_SYNC_MAX_CHARS are accepted as PENDING and embedded by the workers: wait for every chunk.
    ingested += roundChunks.length;
    const deadline = Date.now() + (quick ? 120_000 : 1_800_000);
    while ((await embeddedChunks()) < ingested) {
      if (Date.now() > deadline) throw new Error(`only ${await embeddedChunks()} of ${ingested} chunks were embedded in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
    ingestMs += performance.now() - t;
    windows.push([from, Date.now()]);
  }
  const probes = await new Promise<Array<[number, number]>>((resolve) => {
    probe.once('message', (m) => resolve((m as { lat: Array<[number, number]> }).lat));
    probe.send('stop');
  });
  const healthz = probes.filter(([at]) => windows.some(([from, to]) => at >= from && at <= to)).map(([, ms]) => ms);
  const modelChunksPerS = modelChunks / (modelMs / 1000);
  const ingestChunksPerS = allChunks.length / (ingestMs / 1000);
  await owner.query('analyze sheratan.document_chunks');

  // ---- search: by text with the cache cold (texts never asked before), warm
  // (the same texts again), and by vector (the same texts' vectors, embedded
  // here). The load comes from a process of its own (bench/load.ts), one
  // request at a time. bench/load.ts times every body it is given, its `warm`
  // ones too (sent once more first), so the text searches warm up (plans, the
  // provider's thread) on texts of their own in a call whose timings are dropped.
  const texts = (offset: number, n: number) =>
    Array.from({ length: n }, (_, i) => `${questions[(offset + i) % questions.length]!}${offset + i >= questions.length ? ` (${offset + i})` : ''}`);
  const WARM = 10;
  const warmTexts = texts(0, WARM).map((q) => `warm up: ${q}`);
  const queryTexts = texts(0, QUERIES);
  const queryVectors = await provider.embed([...warmTexts, ...queryTexts]);
  const BY_TEXT = 'query ($q: String!) { searchDocumentChunks(query: $q, first: 10) { distance chunk { rowId } } }';
  const BY_VECTOR = 'query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 10) { distance chunk { rowId } } }';
  const url = `${running.url}/graphql`;
  const byText = (texts: string[]) => texts.map((q) => ({ query: BY_TEXT, variables: { q } }));
  await measureHttp(url, token, byText(warmTexts), 1, 0);
  const cold = await measureHttp(url, token, byText(queryTexts), 1, 0);
  const warm = await measureHttp(url, token, byText(queryTexts), 1, 0);
  const byVector = await measureHttp(
    url,
    token,
    queryVectors.slice(WARM).map((e) => ({ query: BY_VECTOR, variables: { e } })),
    1,
    WARM,
  );

  const result = {
    provider: {
      kind: provider.kind,
      model: provider.model,
      dimension: provider.dimension,
      batch_size: running.config.embeddingBatchSize,
      load_ms: round(modelLoadMs),
    },
    chunking: { max_chars: running.config.chunkMaxChars, overlap_chars: running.config.chunkOverlapChars },
    ingest: {
      documents: documents.length,
      chunks: allChunks.length,
      mean_chunk_chars: Math.round(chars / allChunks.length),
      concurrency: INGEST_CONCURRENCY,
      chunks_in_large_documents: largeChunks,
      embed_sync_max_chars: running.config.embedSyncMaxChars,
      worker_concurrency: running.config.embeddingWorkerConcurrency,
      documents_answered: answered,
      end_to_end_chunks_per_s: round(ingestChunksPerS, 1),
      accepted_s: round(acceptedMs / 1000, 1),
      embedded_s: round(ingestMs / 1000, 1),
      model_alone_chunks_per_s: round(modelChunksPerS, 1),
      model_alone_chunks: modelChunks,
      rounds: ROUNDS,
      ratio: round(ingestChunksPerS / modelChunksPerS),
    },
    healthz_while_embedding: { ...stats(healthz), target_p99_ms: 50, met: percentile(healthz, 99) < 50 },
    search: {
      queries: QUERIES,
      by_vector: { ...stats(byVector.lat), qps: round(byVector.qps, 1) },
      by_text_cold: { ...stats(cold.lat), qps: round(cold.qps, 1) },
      by_text_warm: { ...stats(warm.lat), qps: round(warm.qps, 1) },
    },
    mode: running.db.backend,
    quick,
    measured_at: new Date().toISOString(),
  };
  const out = path.join(projectRoot, 'bench/results');
  mkdirSync(out, { recursive: true });
  const file = quick ? 'text-quick.json' : 'text.json';
  writeFileSync(path.join(out, file), `${JSON.stringify(result, null, 2)}\n`);
  const i = result.ingest;
  const h = result.healthz_while_embedding;
  const s = result.search;
  const row = (name: string, x: { p50_ms: number; p95_ms: number; p99_ms: number; qps: number }) =>
    `${name.padEnd(24)}${String(x.p50_ms).padStart(8)}${String(x.p95_ms).padStart(9)}${String(x.p99_ms).padStart(9)}${String(x.qps).padStart(8)}`;
  process.stdout.write(
    [
      `provider ${result.provider.model} (${result.provider.dimension} dims, batch ${result.provider.batch_size}, model load ${result.provider.load_ms} ms), ${result.mode}`,
      `ingest: ${i.chunks} chunks (${i.documents} documents of plain text, ${i.mean_chunk_chars} chars a chunk, ${i.concurrency} at a time;`,
      `  ${i.chunks_in_large_documents} chunks in documents above EMBED_SYNC_MAX_CHARS=${i.embed_sync_max_chars}; answered ${Object.entries(
        i.documents_answered,
      )
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')})`,
      `  end to end   ${String(i.end_to_end_chunks_per_s).padStart(8)} chunks/s (accepted in ${i.accepted_s} s, all embedded in ${i.embedded_s} s)`,
      `  model alone  ${String(i.model_alone_chunks_per_s).padStart(8)} chunks/s (${i.model_alone_chunks} chunks)   ratio ${i.ratio}`,
      `/healthz while embedding: p50 ${h.p50_ms} ms, p99 ${h.p99_ms} ms, max ${h.max_ms} ms over ${h.n} probes (target p99 < 50 ms: ${h.met ? 'met' : 'MISSED'})`,
      `search, ${s.queries} queries, k = 10, one at a time:  p50 ms   p95 ms   p99 ms     qps`,
      row('  by vector', s.by_vector),
      row('  by text, cache cold', s.by_text_cold),
      row('  by text, cache warm', s.by_text_warm),
      `wrote bench/results/${file}`,
      '',
    ].join('\n'),
  );

  agent.destroy();
  await provider.close();
  await removeBenchTenants(owner, (tenant) => tenant === TENANT);
  await owner.end();
  await running.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
