// Faults, each on real processes: SIGTERM under load, SIGKILL in the middle of
// ingesting, the database going away and coming back, two migrations at once.
// Every engine here runs in a child process, never in the test runner's.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import pg from 'pg';
import { signToken } from '../../src/http/token-signing.ts';
import { parseConfig } from '../../src/config/config.ts';
import { projectRoot } from '../../src/config/paths.ts';
import { backend, createTestDatabase, embeddedTest, migrateTestDatabase, type TestDatabase } from '../support/backend.ts';
import { randomUnit, rng } from '../support/embeddings.ts';
import { freePort, postOnce, runCli, startEngineProcess, startGatewayProcess, waitFor, type Reply } from '../support/processes.ts';

/** Each test runs whole processes (and waits for them). */
const LONG = 240_000;

const SECRET = 'faults-test-secret-0123456789abcdef0123';
const token = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'faults' });
const DIM = 384;
const next = rng(11);
const vectors = Array.from({ length: 64 }, () => randomUnit(DIM, next));
const databases: TestDatabase[] = [];
/** A new database for one test; `migrated` as `npm run db:migrate` leaves it (the embedded gateway migrates at start anyway). */
const database = async (migrated = true): Promise<TestDatabase> => {
  const db = await createTestDatabase();
  databases.push(db);
  if (migrated) await migrateTestDatabase(parseConfig({ ...db.env, LOG_LEVEL: 'silent' }));
  return db;
};
afterAll(async () => {
  for (const db of databases) await db.drop();
});

const INGEST = `mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }`;
const SEARCH = `query ($e: Vector!) { searchDocumentChunks(embedding: $e, first: 5) { distance } }`;
const CHUNKS = 10;
const ingestVariables = (title: string, n: number) => ({
  input: {
    title,
    chunks: Array.from({ length: CHUNKS }, (_, i) => ({ content: `${title} part ${i}`, embedding: vectors[(n + i) % vectors.length] })),
  },
});

interface Outcome {
  started: number;
  ended: number;
  reply?: Reply;
  error?: string;
}
const ok = (o: Outcome): boolean => o.reply?.status === 200 && !o.reply.body.errors;

async function attempt(run: () => Promise<Reply>): Promise<Outcome> {
  const started = Date.now();
  try {
    const reply = await run();
    return { started, ended: Date.now(), reply };
  } catch (err) {
    return { started, ended: Date.now(), error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

test(
  'SIGTERM under load: requests in flight finish, new connections are refused, exit 0 within the grace period',
  async () => {
    const gw = await startGatewayProcess({ ...(await database()).env, JWT_SECRET: SECRET, SHUTDOWN_GRACE_MS: '10000' });
    const outcomes: Outcome[] = [];
    let load = true;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; load; i++) {
        const run =
          i % 2
            ? () => postOnce(gw.url, token, SEARCH, { e: vectors[(w + i) % vectors.length] })
            : () => postOnce(gw.url, token, INGEST, ingestVariables(`w${w}-${i}`, w + i));
        outcomes.push(await attempt(run));
        if (outcomes.at(-1)!.error) await new Promise((r) => setTimeout(r, 20));
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    let sigterm = 0;
    let exit;
    try {
      await waitFor(() => outcomes.filter(ok).length >= 20, 60_000, 'load running').catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(outcomes.slice(0, 3))}`);
      });
      sigterm = Date.now();
      gw.child.kill('SIGTERM');
      exit = await gw.exited;
      await new Promise((r) => setTimeout(r, 300)); // a few attempts against the closed port
    } finally {
      load = false;
      gw.child.kill('SIGKILL');
      await Promise.all(workers);
    }

    expect(exit.code).toBe(0);
    // In-flight requests get at most SHUTDOWN_GRACE_MS; closing the pools and the engine after them takes a few seconds more on a loaded machine.
    expect(exit.at - sigterm).toBeLessThan(10_000 + 8_000);
    expect(outcomes.filter((o) => (o.reply?.status ?? 0) >= 500)).toEqual([]);
    // Whatever got an HTTP answer got a complete, successful one.
    expect(outcomes.filter((o) => o.reply && !ok(o)).map((o) => o.reply)).toEqual([]);
    // Requests in flight when the signal came finished normally.
    expect(outcomes.filter((o) => o.started < sigterm && o.ended > sigterm && ok(o)).length).toBeGreaterThan(0);
    // After it, connections were refused; nothing else went wrong.
    const after = outcomes.filter((o) => o.started > exit.at);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((o) => o.error === 'ECONNREFUSED')).toBe(true);
    expect(gw.output()).toMatch(/"msg":"shutting down","signal":"SIGTERM"/);
    expect(gw.output()).toMatch(/"msg":"stopped"/);
  },
  LONG,
);

test(
  'SIGKILL in the middle of ingesting: after a restart every acknowledged document is whole, and no document is partial',
  async () => {
    const { env } = await database();
    const gw = await startGatewayProcess({ ...env, JWT_SECRET: SECRET });
    const acknowledged = new Map<string, string>();
    let load = true;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; load; i++) {
        const title = `k${w}-${i}`;
        const o = await attempt(() => postOnce(gw.url, token, INGEST, ingestVariables(title, w * 7 + i)));
        if (ok(o)) acknowledged.set((o.reply!.body.data!.ingestDocument as { document: { rowId: string } }).document.rowId, title);
        if (o.error) return;
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    try {
      await waitFor(() => acknowledged.size >= 15, 60_000, 'ingest running');
    } finally {
      gw.child.kill('SIGKILL');
      load = false;
      await Promise.all(workers);
    }
    const exit = await gw.exited;
    expect(exit.signal).toBe('SIGKILL');

    const again = await startGatewayProcess({ ...env, JWT_SECRET: SECRET });
    try {
      const res = await postOnce(again.url, token, '{ allDocuments(first: 1000) { totalCount nodes { rowId title chunks { totalCount } } } }');
      expect(res.body.errors).toBeUndefined();
      const docs = (res.body.data!.allDocuments as { nodes: Array<{ rowId: string; title: string; chunks: { totalCount: number } }> }).nodes;
      const stored = new Map(docs.map((d) => [d.rowId, d]));
      for (const [rowId, title] of acknowledged) {
        expect(stored.get(rowId)).toMatchObject({ title, chunks: { totalCount: CHUNKS } });
      }
      // Any document there is whole: ingest is one transaction.
      expect(docs.filter((d) => d.chunks.totalCount !== CHUNKS)).toEqual([]);
      expect(docs.length).toBeGreaterThanOrEqual(acknowledged.size);
    } finally {
      again.child.kill('SIGTERM');
      expect((await again.exited).code).toBe(0);
    }
  },
  LONG,
);

test(
  'two db:migrate at once on a new database: both succeed (one waits for the other), every migration applied once',
  async () => {
    const fresh = await database(false);
    const first = runCli(['db:migrate'], { ...fresh.env, LOG_LEVEL: 'info' });
    const second = runCli(['db:migrate'], { ...fresh.env, LOG_LEVEL: 'info' });
    const exits = await Promise.all([first.exited, second.exited]);
    expect({ exits: exits.map((e) => e.code), output: exits.some((e) => e.code) ? first.output() + second.output() : '' }).toEqual({
      exits: [0, 0],
      output: '',
    });
    const engine = backend === 'embedded' ? await startEngineProcess(fresh.env.SHERATAN_DATA_DIR!, await freePort()) : null;
    const client = new pg.Client(engine?.ownerUrl ?? fresh.ownerUrl);
    await client.connect();
    try {
      const { rows } = await client.query('select filename, count(*)::int as n from graphile_migrate.migrations group by filename order by filename');
      // graphile-migrate records a committed migration by its number ("000001.sql").
      const committed = readdirSync(path.join(projectRoot, 'migrations', 'committed')).filter((f) => f.endsWith('.sql'));
      expect(rows.map((r) => r.filename)).toEqual(committed.map((f) => `${f.slice(0, 6)}.sql`).sort());
      expect(rows.every((r) => r.n === 1)).toBe(true);
      const tables = await client.query(`select count(*)::int as n from pg_tables where schemaname = 'sheratan'`);
      expect(tables.rows[0].n).toBe(6);
    } finally {
      await client.end();
      if (engine) expect((await engine.stop()).code).toBe(0);
    }
  },
  LONG,
);

test(
  'npm start on a port already in use exits at once, non-zero, naming the port, with nothing left open',
  async () => {
    const { env } = await database();
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const gw = runCli(['start'], { ...env, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'silent' });
      const exit = await gw.exited;
      expect({ code: exit.code, output: gw.output().trim() }).toEqual({
        code: 1,
        output: `sheratan: port ${port} on 127.0.0.1 is already in use (EADDRINUSE); stop what listens there or set PORT`,
      });
      // The pools, the schema builders and (embedded) the engine are closed, so the process ends by itself.
      // It starts (engine, migrations, schema) before it can find the port taken: on a loaded machine that is most of this.
      expect(exit.at - started).toBeLessThan(30_000);
    } finally {
      busy.close();
    }
  },
  LONG,
);

embeddedTest('the engine process stands in for a database that goes away; on a server, server-faults.test.ts stops a cluster of its own')(
  'the database going away and coming back: /readyz 503 then 200, clear errors meanwhile, no crash',
  async () => {
    const dir = (await database(false)).env.SHERATAN_DATA_DIR!;
    expect((await runCli(['db:migrate'], { SHERATAN_DATA_DIR: dir }).exited).code).toBe(0);
    const port = await freePort();
    let engine = await startEngineProcess(dir, port);
    const gw = await startGatewayProcess({
      DATABASE_URL: engine.ownerUrl,
      AUTH_DATABASE_URL: engine.authUrl,
      JWT_SECRET: SECRET,
      DB_POOL_TIMEOUT_MS: '2000',
    });
    try {
      expect((await postOnce(gw.url, token, INGEST, ingestVariables('before', 1))).body.errors).toBeUndefined();

      expect((await engine.stop()).code).toBe(0);
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 503, 15_000, '/readyz reports the outage');
      const during = await postOnce(gw.url, token, SEARCH, { e: vectors[0] });
      expect(during.status).toBeLessThan(500);
      expect(during.body.errors?.[0]?.message).toMatch(/database is unavailable/);
      expect(during.body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      expect(gw.child.exitCode).toBeNull();

      engine = await startEngineProcess(dir, port);
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 15_000, '/readyz recovers');
      const afterwards = await postOnce(gw.url, token, '{ allDocuments(first: 10) { nodes { title chunks { totalCount } } } }');
      expect(afterwards.body).toEqual({ data: { allDocuments: { nodes: [{ title: 'before', chunks: { totalCount: CHUNKS } }] } } });
    } finally {
      gw.child.kill('SIGTERM');
      expect((await gw.exited).code).toBe(0);
      await engine.stop();
    }
  },
  LONG,
);
