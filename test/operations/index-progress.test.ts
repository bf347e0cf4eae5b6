// index:tune shows the build's progress (issue 32): not on a terminal, JSON
// lines on stderr from the start to the end; on a server with the amount and
// the total that pg_stat_progress_create_index reports while pgvector loads
// the tuples, and an ETA.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { insertRandomChunks } from '../support/embeddings.ts';
import { backend } from '../support/backend.ts';
import { projectRoot } from '../../src/config/paths.ts';

let h: Harness;
let owner: pg.Client;
const CHUNKS = 20_000;
beforeAll(async () => {
  h = await startHarness();
  owner = await h.owner();
  // Loaded without the ANN index (index:tune builds it): inserting into HNSW row by row takes minutes.
  await owner.query('drop index sheratan.document_chunks_embedding_idx');
  await insertRandomChunks(owner, 'progress', CHUNKS);
}, 300_000);
afterAll(() => h.stop());

test('index:tune --hnsw prints its progress as JSON lines while it builds, then the result on stdout', () => {
  const run = spawnSync(process.execPath, [path.join(projectRoot, 'src/cli.ts'), 'index:tune', '--hnsw', '--m', '8', '--ef-construction', '16'], {
    // Progress lines are info log lines (the harness's CLI environment is silent).
    env: { ...process.env, ...h.cliEnv, LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 600_000,
  });
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/^rebuilt the ANN index as hnsw/m);
  const lines = run.stderr
    .split('\n')
    .filter(Boolean)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.task === 'index build');
  expect(lines[0]).toMatchObject({ msg: 'index build: in progress', done: 0, total: CHUNKS });
  expect(lines.at(-1)).toMatchObject({ finished: true, msg: 'index build: done' });
  if (backend === 'embedded') {
    // Said before the build: the API waits for it (README "Maintenance on the embedded engine").
    expect(run.stderr).toMatch(
      /"level":"warn","msg":"index:tune: the embedded engine runs one statement at a time: until the build ends, the gateway's requests wait and \/readyz answers 503 \(maintenance\)/,
    );
  }
  if (backend === 'server') {
    // The server told how far the build was, between the first and the last line.
    const seen = lines.slice(1, -1).filter((l) => typeof l.phase === 'string' && (l.done as number) > 0 && (l.total as number) > 0);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.some((l) => typeof l.eta_s === 'number')).toBe(true);
  }
}, 600_000);
