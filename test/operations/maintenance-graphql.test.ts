// GraphQL during maintenance (issue 32): on the embedded engine, while
// index:tune rebuilds the index (its one backend busy), a GraphQL request is
// answered at once with 503, Retry-After and an error whose extensions name
// the maintenance (code MAINTENANCE, the reason, retryAfter), and one that was
// already waiting when the build began is told the same; before, requests
// waited and ended as timeouts or a generic DATABASE_BUSY. A server has no
// maintenance state: its rebuild is CONCURRENTLY, and GraphQL answers with
// data while the build runs.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import type pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { insertRandomChunks } from '../support/embeddings.ts';
import { embeddedTest, serverTest } from '../support/backend.ts';
import { maintenanceFile } from '../../src/database/maintenance.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { CLI } from '../support/processes.ts';

let h: Harness;
let owner: pg.Client;
beforeAll(async () => {
  // The gate watches the in-process channel the default engine (a worker thread) gives the gateway.
  h = await startHarness({ EMBEDDED_ENGINE: 'thread' });
  owner = await h.owner();
  await owner.query('drop index if exists sheratan.document_chunks_embedding_idx');
  await insertRandomChunks(owner, 'acme', 10_000, 'many');
}, 600_000);
afterAll(() => h.stop());

const QUERY = '{ allDocuments { totalCount } }';

/** A GraphQL request as a client sends it; the status, Retry-After and body. */
async function ask(path = '/graphql'): Promise<{
  status: number;
  retryAfter: string | null;
  body: { data?: unknown; errors?: Array<{ message: string; path?: unknown; extensions?: Record<string, unknown> }> };
}> {
  const res = await fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token()}` },
    body: JSON.stringify({ query: QUERY }),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as never };
}

/** index:tune --hnsw as its own process; `during` is asked again and again until it exits. */
async function whileTuning<T>(during: () => Promise<T>): Promise<{ code: number | null; seen: T[] }> {
  const tune = spawn(process.execPath, [CLI, 'index:tune', '--hnsw'], { cwd: projectRoot, env: { ...process.env, ...h.cliEnv }, stdio: 'ignore' });
  let done = false;
  const exited = new Promise<number | null>((resolve) => tune.once('exit', (code) => ((done = true), resolve(code))));
  const seen: T[] = [];
  while (!done) {
    seen.push(await during());
    await new Promise((r) => setTimeout(r, 100)); // a client's pace, not a wait for anything
  }
  return { code: await exited, seen };
}

embeddedTest('maintenance is the embedded engine’s state')(
  'a maintenance record of a live process: GraphQL (API and reporting) answers 503 MAINTENANCE with the reason and Retry-After at once; without it, data',
  async () => {
    const file = maintenanceFile(h.config.dataDir);
    const reason = 'rebuilding the ANN index over 20,000 chunks (npm run index:tune)';
    try {
      writeFileSync(file, JSON.stringify({ reason, since: new Date().toISOString(), expectedS: 55, pid: process.pid }));
      for (const path of ['/graphql', '/reporting/graphql']) {
        const r = await ask(path);
        expect(r.status).toBe(503);
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(5);
        expect(Number(r.retryAfter)).toBeLessThanOrEqual(55);
        expect(r.body.errors).toEqual([
          {
            message: expect.stringMatching(
              /^the database is under maintenance: rebuilding the ANN index over 20,000 chunks \(npm run index:tune\), since .*; retry in \d+ s$/,
            ),
            extensions: { code: 'MAINTENANCE', reason, since: expect.any(String), expectedS: 55, retryAfter: Number(r.retryAfter) },
          },
        ]);
      }
    } finally {
      rmSync(file, { force: true });
    }
    expect(await ask()).toMatchObject({ status: 200, body: { data: { allDocuments: { totalCount: 1 } } } });
  },
);

embeddedTest('maintenance is the embedded engine’s state')(
  'a request already waiting for the backend when maintenance begins is told MAINTENANCE when its wait ends, not DATABASE_BUSY',
  async () => {
    const file = maintenanceFile(h.config.dataDir);
    const channel = h.gateway.db.engine!.channel!;
    // Seen, not changed: the moment the request's statement reaches the engine (past the gateway's maintenance
    // check). The channel carries GraphQL requests only (health, live events and the worker use sockets).
    let reached!: () => void;
    const reachedEngine = new Promise<void>((resolve) => (reached = resolve));
    const send = channel.send.bind(channel);
    channel.send = (sid, user, data, waitMs) => {
      reached();
      return send(sid, user, data, waitMs);
    };
    // A psql-like client holds the one backend inside a transaction (the request waits DB_POOL_TIMEOUT_MS for it).
    await owner.query('begin');
    await owner.query('select 1');
    try {
      const reply = ask();
      await reachedEngine;
      writeFileSync(
        file,
        JSON.stringify({ reason: 'rebuilding the ANN index (npm run index:tune)', since: new Date().toISOString(), expectedS: 60, pid: process.pid }),
      );
      const r = await reply;
      expect(r.status).toBe(503);
      expect(r.body.errors).toEqual([
        expect.objectContaining({
          path: ['allDocuments', 'totalCount'],
          message: expect.stringMatching(/^the database is under maintenance: rebuilding the ANN index \(npm run index:tune\), since /),
          extensions: expect.objectContaining({
            code: 'MAINTENANCE',
            reason: 'rebuilding the ANN index (npm run index:tune)',
            retryAfter: Number(r.retryAfter),
          }),
        }),
      ]);
    } finally {
      channel.send = send;
      rmSync(file, { force: true });
      await owner.query('rollback');
    }
    expect(await ask()).toMatchObject({ status: 200 });
  },
  60_000,
);

embeddedTest('maintenance is the embedded engine’s state')(
  'during index:tune every GraphQL request gets data or 503 MAINTENANCE naming the rebuild, none a timeout or DATABASE_BUSY',
  async () => {
    const { code, seen } = await whileTuning(() => ask());
    expect(code).toBe(0);
    const refused = seen.filter((r) => r.status !== 200);
    // Each reply is data, or the maintenance with its reason and a Retry-After: nothing else.
    for (const r of seen) {
      if (r.status === 200) expect(r.body).toEqual({ data: { allDocuments: { totalCount: 1 } } });
      else {
        expect(r).toMatchObject({
          status: 503,
          body: { errors: [{ extensions: { code: 'MAINTENANCE', reason: 'rebuilding the ANN index over 10,000 chunks (npm run index:tune)' } }] },
        });
        expect(Number(r.retryAfter)).toBe(r.body.errors![0]!.extensions!.retryAfter);
      }
    }
    expect(refused.length).toBeGreaterThan(0);
    // Those already waiting for the backend when the build began carry the field's path (error-mask.ts); the others, the gate's.
    const waited = refused.filter((r) => r.body.errors![0]!.path !== undefined).length;
    process.stdout.write(
      `during index:tune (10,000 chunks): ${seen.length} GraphQL requests, ${refused.length} answered 503 MAINTENANCE (${waited} after waiting)\n`,
    );
    expect(await ask()).toMatchObject({ status: 200 });
  },
  600_000,
);

serverTest('a server rebuilds CONCURRENTLY: there is no maintenance state')(
  'during index:tune on a server GraphQL answers with data while the build runs (none refused)',
  async () => {
    const { code, seen } = await whileTuning(async () => {
      const building =
        (await owner.query<{ n: number }>("select count(*)::int as n from pg_stat_progress_create_index where relid = 'sheratan.document_chunks'::regclass"))
          .rows[0]!.n > 0;
      return { building, reply: await ask() };
    });
    expect(code).toBe(0);
    expect(seen.filter((s) => s.building).length).toBeGreaterThan(0);
    for (const s of seen) expect(s.reply).toMatchObject({ status: 200, body: { data: { allDocuments: { totalCount: 1 } } } });
  },
  600_000,
);
