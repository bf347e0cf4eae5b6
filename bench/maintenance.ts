// npm run bench:maintenance [-- --chunks 20000]: how long the embedded API is
// unavailable while `index:tune` rebuilds the ANN index (issue 32). A gateway
// process on a fresh data directory, N chunks of random 384-number vectors,
// then `index:tune -- --hnsw` in its own process while /readyz is asked every
// 200 ms (2 s limit each). Prints the window and writes
// bench/results/maintenance-<N>.json. Figures to read, never assertions.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { projectRoot } from '../src/config/paths.ts';
import { CLI, runCli, startGatewayProcess } from '../test/support/processes.ts';

const { values } = parseArgs({ options: { chunks: { type: 'string', default: '20000' } } });
const N = Number(values.chunks);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sheratan-maintenance-'));
const env = { SHERATAN_DATA_DIR: dataDir, EMBEDDING_PROVIDER: 'none', LOG_LEVEL: 'warn' };
const gateway = await startGatewayProcess(env);
try {
  const urlRun = runCli(['db:url'], env);
  await urlRun.exited;
  const ownerUrl = urlRun.output().split('\n')[0]!.trim();
  const owner = new pg.Client(ownerUrl);
  await owner.connect();
  // Loaded without the ANN index (inserting into HNSW row by row is the slow way), in batches.
  await owner.query('drop index if exists sheratan.document_chunks_embedding_idx');
  const doc = await owner.query<{ id: string }>("insert into sheratan.documents (tenant, title) values ('maintenance', 'many chunks') returning id");
  for (let start = 0; start < N; start += 5000) {
    await owner.query(
      `insert into sheratan.document_chunks (tenant, document_id, chunk_index, content, embedding)
       select 'maintenance', $1, g.i, 'chunk ' || g.i, (select array_agg(random() + d.j * 0 + g.i * 0)::vector(384) from generate_series(1, 384) d(j))
         from generate_series($2::int, $3::int - 1) g(i)`,
      [doc.rows[0]!.id, start, Math.min(N, start + 5000)],
    );
  }
  await owner.end();
  process.stderr.write(`loaded ${N} chunks; rebuilding the index while /readyz is asked every 200 ms\n`);

  const samples: Array<{ at_ms: number; status: number | 'timeout' | 'error'; ms: number }> = [];
  const t0 = Date.now();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const started = Date.now();
      let status: number | 'timeout' | 'error';
      try {
        status = (await fetch(`${gateway.url}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
      } catch (err) {
        status = (err as Error).name === 'TimeoutError' ? 'timeout' : 'error';
      }
      samples.push({ at_ms: started - t0, status, ms: Date.now() - started });
      await new Promise((r) => setTimeout(r, Math.max(0, 200 - (Date.now() - started))));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const buildStart = Date.now() - t0;
  const tune = spawn(process.execPath, [CLI, 'index:tune', '--hnsw'], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let tuneOut = '';
  tune.stdout.on('data', (d: Buffer) => (tuneOut += d.toString()));
  await new Promise((r) => tune.once('exit', r));
  const buildEnd = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 3000));
  polling = false;
  await poller;

  const bad = samples.filter((s) => s.status !== 200);
  const first = bad[0];
  const last = bad.at(-1);
  const result = {
    chunks: N,
    backend: 'embedded',
    build_s: (buildEnd - buildStart) / 1000,
    unavailable_s: first && last ? (last.at_ms + last.ms - first.at_ms) / 1000 : 0,
    readyz_not_200: bad.length,
    readyz_timeouts: bad.filter((s) => s.status === 'timeout').length,
    readyz_503: bad.filter((s) => s.status === 503).length,
    readyz_max_ms: Math.max(...samples.map((s) => s.ms)),
    samples: samples.length,
    index_tune: tuneOut.trim(),
  };
  mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(projectRoot, 'bench', 'results', `maintenance-${N}.json`), `${JSON.stringify({ ...result, timeline: samples }, null, 2)}\n`);
  process.stdout.write(
    `embedded index rebuild over ${N} chunks: build ${result.build_s} s; /readyz not 200 for ${result.unavailable_s} s ` +
      `(${result.readyz_timeouts} timeouts of 2 s, ${result.readyz_503} answers 503, slowest answer ${result.readyz_max_ms} ms, ${result.samples} asks)\n`,
  );
} finally {
  gateway.child.kill('SIGTERM');
  await gateway.exited;
  rmSync(dataDir, { recursive: true, force: true });
}
