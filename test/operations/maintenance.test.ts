// Maintenance on the embedded engine (issue 32): while index:tune rebuilds the
// index, the engine's one backend is busy, and /readyz used to wait behind it
// and time out. The command records the work in the data directory and
// /readyz answers 503 at once with the reason and Retry-After; a record whose
// process is gone is ignored.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { insertRandomChunks } from '../support/embeddings.ts';
import { describeEmbedded } from '../support/backend.ts';
import { maintenanceFile } from '../../src/database/maintenance.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { CLI } from '../support/processes.ts';

describeEmbedded('a server builds the index CONCURRENTLY and keeps serving; the maintenance state is the embedded engine’s', 'maintenance state', () => {
  let h: Harness;
  let owner: pg.Client;
  beforeAll(async () => {
    h = await startHarness();
    owner = await h.owner();
  }, 300_000);
  afterAll(() => h.stop());

  const readyz = async () => {
    const res = await fetch(`${h.url}/readyz`, { signal: AbortSignal.timeout(30_000) });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
  };

  test('a maintenance record of a live process makes /readyz 503 with the reason and Retry-After; a stale one or none, 200', async () => {
    const file = maintenanceFile(h.config.dataDir);
    try {
      writeFileSync(
        file,
        JSON.stringify({
          reason: 'rebuilding the ANN index over 20,000 chunks (npm run index:tune)',
          since: new Date().toISOString(),
          expectedS: 55,
          pid: process.pid,
        }),
      );
      const busy = await readyz();
      expect(busy.status).toBe(503);
      expect(busy.body).toMatchObject({ status: 'maintenance', reason: 'rebuilding the ANN index over 20,000 chunks (npm run index:tune)', expected_s: 55 });
      expect(Number(busy.retryAfter)).toBeGreaterThanOrEqual(5);
      expect(Number(busy.retryAfter)).toBeLessThanOrEqual(55);
      // A process that is gone (a crashed index:tune) leaves nothing in maintenance.
      const gone = spawn(process.execPath, ['-e', '0']);
      await new Promise((r) => gone.once('exit', r));
      writeFileSync(file, JSON.stringify({ reason: 'x', since: new Date().toISOString(), expectedS: null, pid: gone.pid }));
      expect((await readyz()).status).toBe(200);
    } finally {
      rmSync(file, { force: true });
    }
    expect((await readyz()).status).toBe(200);
  });

  test('during index:tune, /readyz says maintenance with the reason; afterwards it is ready and the record is gone', async () => {
    await owner.query('drop index if exists sheratan.document_chunks_embedding_idx');
    await insertRandomChunks(owner, 'maintenance', 10_000, 'many');
    const tune = spawn(process.execPath, [CLI, 'index:tune', '--hnsw'], { cwd: projectRoot, env: { ...process.env, ...h.cliEnv }, stdio: 'ignore' });
    let done = false;
    const exited = new Promise<number | null>((resolve) => tune.once('exit', (code) => ((done = true), resolve(code))));
    const seen: Array<Record<string, unknown>> = [];
    while (!done) {
      try {
        const r = await fetch(`${h.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
        if (r.status === 503) seen.push((await r.json()) as Record<string, unknown>);
        else await r.arrayBuffer();
      } catch {
        // a request that waited behind the build (asked just before the record was written)
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await exited).toBe(0);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]).toMatchObject({ status: 'maintenance', reason: 'rebuilding the ANN index over 10,000 chunks (npm run index:tune)' });
    expect((await readyz()).status).toBe(200);
    expect(existsSync(path.join(h.config.dataDir, 'maintenance.json'))).toBe(false);
  }, 600_000);
});
