// An outside client holding a transaction open never freezes the API. On a
// server it has a backend of its own; on the embedded engine it holds the one
// backend, so GraphQL requests that wait for it longer than DB_POOL_TIMEOUT_MS
// are answered 503 with Retry-After (as for an exhausted pool), having run
// nothing, and the idle client is ended after IDLE_IN_TRANSACTION_TIMEOUT_MS.
import pg from 'pg';
import { startHarness, type Harness } from '../support/harness.ts';
import { backend } from '../support/backend.ts';

const POOL_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 4000;
let h: Harness;

beforeAll(async () => {
  // Embedded, the default engine (a worker thread): the 503 after DB_POOL_TIMEOUT_MS is its channel's bound on the wait.
  h = await startHarness({
    DB_POOL_TIMEOUT_MS: String(POOL_TIMEOUT_MS),
    IDLE_IN_TRANSACTION_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
    EMBEDDED_ENGINE: 'thread',
  });
});
afterAll(() => h.stop());

const INGEST = `mutation { ingestDocument(input: { title: "while busy", chunks: [] }) { document { rowId } } }`;
const COUNT = '{ allDocuments { totalCount } }';

async function timed(query: string): Promise<{ status: number; retryAfter: string | null; body: Record<string, unknown>; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token()}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown>, ms: Date.now() - started };
}

test('a psql-like client idle inside a transaction: GraphQL gets a fast 503 (embedded) or is not held up at all (server), and nothing is stored', async () => {
  const before = await timed(COUNT);
  expect(before.status).toBe(200);
  const idler = new pg.Client(h.ownerUrl);
  const told: Array<Error & { code?: string }> = [];
  idler.on('error', (err) => told.push(err));
  await idler.connect();
  await idler.query('begin');
  await idler.query('select count(*) from sheratan.documents');
  try {
    const read = await timed(COUNT);
    const write = await timed(INGEST);
    if (backend === 'server') {
      expect(read).toMatchObject({ status: 200 });
      expect(write.status).toBe(200);
      expect(read.ms).toBeLessThan(POOL_TIMEOUT_MS);
    } else {
      for (const r of [read, write]) {
        expect(r.status).toBe(503);
        expect(r.retryAfter).toBe('1');
        expect(r.ms).toBeGreaterThanOrEqual(POOL_TIMEOUT_MS - 50);
        expect(r.ms).toBeLessThan(POOL_TIMEOUT_MS + 2000);
        const errors = r.body.errors as Array<{ message: string; extensions: { code: string } }>;
        expect(errors[0]).toMatchObject({
          message: expect.stringMatching(
            /one backend stayed held by another client \(sheratan, session \d+\) for 1000 ms \(DB_POOL_TIMEOUT_MS\); nothing ran; retry shortly/,
          ),
          extensions: { code: 'DATABASE_BUSY' },
        });
      }
    }
  } finally {
    if (backend === 'server') await idler.query('rollback');
  }
  if (backend === 'embedded') {
    // Others kept asking: the idle client is ended after IDLE_IN_TRANSACTION_TIMEOUT_MS, and GraphQL answers again.
    const deadline = Date.now() + IDLE_TIMEOUT_MS + 5000;
    let last = await timed(COUNT);
    while (last.status !== 200 && Date.now() < deadline) last = await timed(COUNT);
    expect(last.status).toBe(200);
    expect(told[0]?.code).toBe('25P03');
  }
  const after = await timed(COUNT);
  expect(after.status).toBe(200);
  const stored = (after.body.data as { allDocuments: { totalCount: number } }).allDocuments.totalCount;
  const had = (before.body.data as { allDocuments: { totalCount: number } }).allDocuments.totalCount;
  // The refused mutation ran nothing (the server's went through).
  expect(stored).toBe(backend === 'server' ? had + 1 : had);
  await idler.end().catch(() => undefined);
}, 30_000);
