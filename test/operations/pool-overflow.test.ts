// DB_POOL_SIZE + DB_MAX_OVERFLOW (README: "pool max = size + overflow";
// "Connection pool exhausted": at most DB_POOL_SIZE + DB_MAX_OVERFLOW GraphQL
// requests use the database at once; one that gets no connection within
// DB_POOL_TIMEOUT_MS is answered 503 with Retry-After). With DB_POOL_SIZE=2
// and DB_MAX_OVERFLOW=3, requests are held in the database deterministically:
// the owner holds sheratan.documents in a transaction (ACCESS EXCLUSIVE), so
// every request that counts documents waits inside the database until the
// test commits. What holds is counted, never timed:
// - in the database: on a server the gateway's backends waiting for that lock
//   (pg_stat_activity, seen by the superuser); on the embedded engine, whose
//   one backend the owner's transaction holds, the gateway's engine sessions
//   with a batch handed to the engine over its channel and not yet answered
//   (a session is the engine's counterpart of a pooled connection);
// - in the gateway: requests that are in the application and those that
//   hold an admission slot (requestState(req).admission, set at admission).
// Five requests hold the database at once (more than DB_POOL_SIZE); a sixth,
// on a table nobody locked, waits outside it; once the owner commits, all six
// are answered. On a server, a gateway with a short DB_POOL_TIMEOUT_MS answers
// the sixth 503 POOL_EXHAUSTED while the five stay held. (The embedded engine
// answers a request that waits for its one backend DATABASE_BUSY after the
// same DB_POOL_TIMEOUT_MS: observability.test.ts.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import pg from 'pg';
import { parseConfig } from '../../src/config/config.ts';
import { withPgClient } from '../../src/database/connect.ts';
import { startGateway, type RunningGateway } from '../../src/http/start.ts';
import { requestState } from '../../src/http/request-state.ts';
import { backend, serverTest } from '../support/backend.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { waitFor } from '../support/processes.ts';

const SIZE = 2;
const OVERFLOW = 3;
const MAX = SIZE + OVERFLOW;
const POOL_ENV = {
  DB_POOL_SIZE: String(SIZE),
  DB_MAX_OVERFLOW: String(OVERFLOW),
  // The held requests wait for the test's lock, not for a statement timeout.
  STATEMENT_TIMEOUT_MS: '0',
  // Embedded: the owner's transaction holds the one backend for as long as the test needs.
  IDLE_IN_TRANSACTION_TIMEOUT_MS: '600000',
};
const COUNT_DOCUMENTS = '{ allDocuments { totalCount } }';
/** Reads a table nobody locks: on a server it would be answered at once by any free connection. */
const COUNT_JOBS = '{ allJobs { totalCount } }';

let h: Harness;
beforeAll(async () => {
  // Waiting is not what ends the first test: DB_POOL_TIMEOUT_MS is long.
  // Held batches are read off the in-process channel of the default engine (a worker thread).
  h = await startHarness({ ...POOL_ENV, DB_POOL_TIMEOUT_MS: '120000', EMBEDDED_ENGINE: 'thread' });
  // Something in tenant acme's documents, so that the held requests' answers can be told apart from nothing.
  const res = await h.graphql('mutation { ingestDocument(input: { title: "held", chunks: [{ content: "one chunk" }] }) { document { title } } }');
  expect(res.body.errors).toBeUndefined();
}, 180_000);
afterAll(() => h?.stop());

/** The requests inside the gateway's application, and which of them hold an admission slot. */
function watchRequests(gateway: RunningGateway) {
  type Handle = (req: IncomingMessage, res: ServerResponse, next?: unknown) => void;
  const app = gateway.gateway.app as unknown as { handle: Handle };
  const live = new Set<IncomingMessage>();
  const handle = app.handle;
  app.handle = function (this: unknown, req: IncomingMessage, res: ServerResponse, next?: unknown) {
    if (req.url?.startsWith('/graphql')) {
      live.add(req);
      res.once('close', () => live.delete(req));
    }
    return handle.call(this, req, res, next);
  };
  return {
    inApp: (): number => live.size,
    admitted: (): number => [...live].filter((req) => requestState(req)?.admission).length,
    stop: () => void (app.handle = handle),
  };
}

/**
 * Embedded: the gateway's engine sessions with a batch handed to the engine
 * and not yet answered (by session number), read off the in-process channel
 * the gateway's requests use (packages/pglite-server/src/channel.ts).
 */
function watchEngineSessions(gateway: RunningGateway) {
  const channel = gateway.db.engine?.channel;
  if (!channel) throw new Error('no channel to the embedded engine in this process');
  const send = channel.send;
  const pending = new Map<number, number>();
  let most = 0;
  channel.send = function (this: typeof channel, sid, user, data, waitMs) {
    pending.set(sid, (pending.get(sid) ?? 0) + 1);
    most = Math.max(most, pending.size);
    const done = (): void => {
      const left = pending.get(sid)! - 1;
      if (left > 0) pending.set(sid, left);
      else pending.delete(sid);
    };
    const reply = send.call(this, sid, user, data, waitMs);
    reply.then(done, done);
    return reply;
  };
  return {
    holding: (): number => pending.size,
    most: (): number => most,
    stop: () => void (channel.send = send),
  };
}

/** Server: the gateway's backends (application_name sheratan-gateway) and, of those, the ones waiting for a lock. */
async function gatewayBackends(): Promise<{ all: number; waitingForLock: number }> {
  return withPgClient(h.database.superuserUrl!, async (c) => {
    const { rows } = await c.query<{ all: string; lock: string }>(
      `select count(*) as all, count(*) filter (where wait_event_type = 'Lock') as lock
         from pg_stat_activity where datname = current_database() and application_name = 'sheratan-gateway'`,
    );
    return { all: Number(rows[0]!.all), waitingForLock: Number(rows[0]!.lock) };
  });
}

/** The owner, in a transaction holding documents: requests that read it wait in the database until `release`. */
async function holdDocuments(): Promise<{ release(): Promise<void> }> {
  const owner = new pg.Client(h.ownerUrl);
  owner.on('error', () => undefined);
  await owner.connect();
  await owner.query('begin');
  await owner.query('lock table sheratan.documents in access exclusive mode');
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await owner.query('commit').catch(() => undefined);
      await owner.end();
    },
  };
}

interface Answer {
  status: number;
  body: { data?: Record<string, { totalCount: number }>; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  retryAfter: string | null;
}
async function post(url: string, query: string): Promise<Answer> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token()}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'], retryAfter: res.headers.get('retry-after') };
}

test(`DB_POOL_SIZE=${SIZE} + DB_MAX_OVERFLOW=${OVERFLOW}: ${MAX} requests hold the database at once, the next waits outside it until one is done`, async () => {
  const requests = watchRequests(h.gateway);
  const engine = backend === 'embedded' ? watchEngineSessions(h.gateway) : undefined;
  /** Requests in the database now: server backends waiting for the lock, or engine sessions holding a batch. */
  const inDatabase = async (): Promise<number> => (engine ? engine.holding() : (await gatewayBackends()).waitingForLock);
  const hold = await holdDocuments();
  try {
    const held = Array.from({ length: MAX }, () => post(h.url, COUNT_DOCUMENTS));
    await waitFor(async () => (await inDatabase()) === MAX, 60_000, `${MAX} requests held in the database`);
    expect(requests.admitted()).toBe(MAX);

    const next = post(h.url, COUNT_JOBS);
    await waitFor(() => requests.inApp() === MAX + 1, 60_000, 'the next request in the gateway');
    // It is in the gateway but holds no slot, and the database still has exactly MAX of its requests.
    expect(requests.admitted()).toBe(MAX);
    expect(await inDatabase()).toBe(MAX);
    if (backend === 'server') expect((await gatewayBackends()).all).toBe(MAX);
    else expect(engine!.most()).toBe(MAX);

    await hold.release();
    for (const answer of await Promise.all(held)) {
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ data: { allDocuments: { totalCount: 1 } } });
    }
    const waited = await next;
    expect(waited.status).toBe(200);
    expect(waited.body).toEqual({ data: { allJobs: { totalCount: 0 } } });
    if (engine) expect(engine.most()).toBe(MAX);
  } finally {
    await hold.release();
    requests.stop();
    engine?.stop();
  }
}, 180_000);

serverTest('the embedded engine answers DATABASE_BUSY for its one backend after the same DB_POOL_TIMEOUT_MS (observability.test.ts)')(
  `with a short DB_POOL_TIMEOUT_MS, the request after the ${MAX} held ones is answered 503 POOL_EXHAUSTED naming DB_POOL_SIZE + DB_MAX_OVERFLOW; the held ones then complete`,
  async () => {
    // A second gateway on the same database, whose requests give up waiting after one second.
    const config = parseConfig({ ...h.database.env, LOG_LEVEL: 'silent', ...POOL_ENV, DB_POOL_TIMEOUT_MS: '1000' });
    const short = await startGateway(config, { port: 0 });
    const requests = watchRequests(short);
    const hold = await holdDocuments();
    try {
      const held = Array.from({ length: MAX }, () => post(short.url, COUNT_DOCUMENTS));
      await waitFor(async () => (await gatewayBackends()).waitingForLock === MAX, 60_000, `${MAX} requests held in the database`);
      expect(requests.admitted()).toBe(MAX);

      const refused = await post(short.url, COUNT_JOBS);
      expect(refused.status).toBe(503);
      expect(refused.retryAfter).toBe('1');
      expect(refused.body).toEqual({
        errors: [
          {
            message: `the database connection pool is exhausted: all ${MAX} connections (DB_POOL_SIZE + DB_MAX_OVERFLOW) stayed busy for 1000 ms (DB_POOL_TIMEOUT_MS); retry shortly`,
            extensions: { code: 'POOL_EXHAUSTED' },
          },
        ],
      });
      // The refused request never reached the database; the held ones are still there.
      expect((await gatewayBackends()).waitingForLock).toBe(MAX);
      expect(requests.admitted()).toBe(MAX);

      await hold.release();
      for (const answer of await Promise.all(held)) {
        expect(answer.status).toBe(200);
        expect(answer.body).toEqual({ data: { allDocuments: { totalCount: 1 } } });
      }
      expect(await post(short.url, COUNT_JOBS)).toMatchObject({ status: 200, body: { data: { allJobs: { totalCount: 0 } } } });
    } finally {
      await hold.release();
      requests.stop();
      await short.stop();
    }
  },
  180_000,
);
