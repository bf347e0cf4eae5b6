// EMBEDDED_ENGINE=process (packages/pglite-server/src/supervisor.ts): the embedded engine in
// a supervised child process, so that V8's occasional abort in its WebAssembly
// code bookkeeping (nodejs/node#64500) costs an engine restart, not the
// gateway. The abort is stood in for by SIGSEGV sent to the engine's process
// while a client keeps ingesting through the gateway: the gateway process
// lives on, every reply is an answer or DATABASE_UNAVAILABLE, the engine comes
// back on the same port, and every acknowledged document is there, whole.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { signToken } from '../../src/http/token-signing.ts';
import { parseConfig } from '../../src/config/config.ts';
import { processAlive } from '@sheratan/pglite-server';
import { createTestDatabase, embeddedTest, type TestDatabase } from '../support/backend.ts';
import { randomUnit, rng } from '../support/embeddings.ts';
import { postOnce, startGatewayProcess, waitFor, type Reply } from '../support/processes.ts';

/** The test runs whole processes (and waits for them). */
const LONG = 240_000;

const SECRET = 'supervision-test-secret-0123456789abcdef';
const token = signToken(SECRET, { role: 'sheratan_app', tenant: 'acme', sub: 'supervision' });
const DIM = 384;
const next = rng(31);
const vectors = Array.from({ length: 16 }, () => randomUnit(DIM, next));
const CHUNKS = 5;
const INGEST = `mutation ($input: IngestDocumentInput!) { ingestDocument(input: $input) { document { rowId } } }`;
const ingestVariables = (title: string) => ({
  input: { title, chunks: Array.from({ length: CHUNKS }, (_, i) => ({ content: `${title} part ${i}`, embedding: vectors[i % vectors.length] })) },
});

let database: TestDatabase | undefined;
afterAll(async () => {
  await database?.drop();
});

test('EMBEDDED_ENGINE takes thread (the default) or process; anything else is refused, naming the variable', () => {
  expect(parseConfig({}).embeddedEngine).toBe('thread');
  expect(parseConfig({ EMBEDDED_ENGINE: 'process' }).embeddedEngine).toBe('process');
  expect(() => parseConfig({ EMBEDDED_ENGINE: 'fork' })).toThrow('EMBEDDED_ENGINE must be one of thread, process, not "fork"');
});

/** The pid of the process serving the embedded engine for `dir`, from its lock file. */
const enginePid = (dir: string): number | undefined => {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'engine.lock'), 'utf8')) as { pid: number; port?: number }).pid;
  } catch {
    return undefined;
  }
};

embeddedTest('the server backend runs no embedded engine, so there is nothing to supervise')(
  "EMBEDDED_ENGINE=process: the engine's process killed by SIGSEGV is restarted; the gateway keeps serving, and nothing acknowledged is lost",
  async () => {
    database = await createTestDatabase();
    const dir = database.env.SHERATAN_DATA_DIR!;
    const gw = await startGatewayProcess({ ...database.env, JWT_SECRET: SECRET, EMBEDDED_ENGINE: 'process', DB_POOL_TIMEOUT_MS: '2000' });
    try {
      const first = await postOnce(gw.url, token, INGEST, ingestVariables('before'));
      expect(first.body.errors).toBeUndefined();
      const crashed = enginePid(dir)!;
      expect(crashed).toBeDefined();
      expect(crashed).not.toBe(gw.child.pid); // the engine is not in the gateway's process

      // A client keeps ingesting, one document at a time, through the crash and the restart.
      const replies: Array<{ title: string; reply?: Reply; error?: string }> = [];
      let ingesting = true;
      const client = (async () => {
        for (let n = 0; ingesting; n++) {
          const title = `during ${n}`;
          try {
            replies.push({ title, reply: await postOnce(gw.url, token, INGEST, ingestVariables(title)) });
          } catch (err) {
            replies.push({ title, error: (err as Error).message });
          }
        }
      })();
      await waitFor(() => replies.length > 0, 60_000, 'a first ingest during the test');
      process.kill(crashed, 'SIGSEGV');
      await waitFor(() => !processAlive(crashed), 60_000, 'the engine process ends');
      await waitFor(
        () => {
          const pid = enginePid(dir);
          return pid !== undefined && pid !== crashed && processAlive(pid);
        },
        120_000,
        'a new engine process',
      );
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 120_000, '/readyz answers 200 again');
      const count = replies.length;
      await waitFor(() => replies.slice(count).some((r) => r.reply?.status === 200 && !r.reply.body.errors), 120_000, 'an ingest succeeds after the restart');
      ingesting = false;
      await client;

      expect(gw.child.exitCode).toBeNull(); // the gateway lived through it
      // Every reply is an answer or says the database is unavailable: no dropped connection, no 500.
      const unexpected = replies.filter(
        (r) => !(r.reply?.status === 200 && (!r.reply.body.errors || r.reply.body.errors[0]?.extensions?.code === 'DATABASE_UNAVAILABLE')),
      );
      expect(unexpected).toEqual([]);
      const acknowledged = ['before', ...replies.filter((r) => r.reply && !r.reply.body.errors).map((r) => r.title)];

      const after = await postOnce(gw.url, token, '{ allDocuments(first: 1000) { nodes { title chunks { totalCount } } } }');
      const stored = new Map(
        (after.body.data as { allDocuments: { nodes: Array<{ title: string; chunks: { totalCount: number } }> } }).allDocuments.nodes.map((d) => [
          d.title,
          d.chunks.totalCount,
        ]),
      );
      for (const title of acknowledged) expect([title, stored.get(title)]).toEqual([title, CHUNKS]);
      // A document whose reply never came may or may not be there, but never partial.
      for (const [title, chunks] of stored) expect([title, chunks]).toEqual([title, CHUNKS]);
    } finally {
      gw.child.kill('SIGTERM');
      const exit = await gw.exited;
      expect([exit.code, exit.code === 0 ? '' : gw.output().slice(-4000)]).toEqual([0, '']);
    }
    // The gateway's stop stopped its engine too: nothing holds the data directory.
    const left = enginePid(dir);
    expect(left === undefined || !processAlive(left)).toBe(true);
  },
  LONG,
);
