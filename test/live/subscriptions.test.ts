// Subscriptions over graphql-ws on /graphql (issue 27 item 1), both backends,
// with the real gateway, real sockets, real tokens and the real embedding
// worker: a document's embedding status reaches its tenant without polling,
// jobs' status changes too; every tenant (names with the topic's separator,
// non-ASCII, 200 characters) sees its own events and none of another's on the
// same topics; the token in connection_init is checked as an HTTP token is and
// the socket closes when it expires; the limits (subscriptions per socket,
// sockets per tenant, message size) and queries over the socket are refused
// by name; a subscription whose events pile up unread is ended and holds
// nothing.
import { createClient, type Client } from 'graphql-ws';
import { Client as UrqlClient, subscriptionExchange, gql } from '@urql/core';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import WebSocket from 'ws';
import { signToken } from '../../src/http/token-signing.ts';
import { LiveEvents, liveTopic, SLOW_CONSUMER } from '../../src/graphql/live-events.ts';
import { startPipeline, INGEST, type PipelineHarness } from '../embedding/pipeline-support.ts';

let h: PipelineHarness;
const LIMITS = { LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET: '4', LIVE_MAX_SOCKETS_PER_TENANT: '3', LIVE_MAX_MESSAGE_BYTES: '4096' };
beforeAll(async () => {
  h = await startPipeline({ EMBEDDING_PROVIDER: 'local', EMBED_SYNC_MAX_CHARS: '100', JWT_CLOCK_SKEW: '0', ...LIMITS });
}, 240_000);
afterAll(() => h?.stop());

const wsUrl = (): string => h.gateway.url.replace(/^http/, 'ws') + '/graphql';
const tokenFor = (tenant: string, role: 'sheratan_app' | 'sheratan_readonly' = 'sheratan_app', expiresIn: number | string = '1h') =>
  signToken(h.config.jwtSecret!, { role, tenant, sub: 'alice', expiresIn });

interface Closed {
  code: number;
  reason: string;
}

/** A graphql-ws client (no retries); `closed` resolves with the socket's close code and reason. */
function client(connectionParams: Record<string, unknown> | undefined): { client: Client; closed: Promise<Closed> } {
  let closedWith!: (c: Closed) => void;
  const closed = new Promise<Closed>((resolve) => (closedWith = resolve));
  const c = createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    ...(connectionParams ? { connectionParams } : {}),
    on: { closed: (event) => closedWith({ code: (event as { code: number }).code, reason: String((event as { reason: unknown }).reason) }) },
    onNonLazyError: () => undefined,
  });
  return { client: c, closed };
}

interface Sub<T> {
  events: T[];
  errors: unknown[];
  done: Promise<void>;
  stop(): void;
}

function subscribe<T = Record<string, unknown>>(c: Client, query: string, variables: Record<string, unknown> = {}): Sub<T> {
  const events: T[] = [];
  const errors: unknown[] = [];
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const stop = c.subscribe<T>(
    { query, variables },
    {
      next: (value) => (value.errors ? errors.push(...value.errors) : events.push(value.data as T)),
      error: (err) => {
        // graphql-ws hands GraphQL errors as an array, a socket's failure as an event.
        if (Array.isArray(err)) errors.push(...(err as unknown[]));
        else errors.push(err);
        finish();
      },
      complete: finish,
    },
  );
  return { events, errors, done, stop };
}

/** Waits until the gateway listens for `n` subscriptions, and its LISTENs are done (an event committed now is heard). */
async function listening(n: number): Promise<void> {
  const events = h.gateway.gateway.liveEvents;
  await h.until(async () => events.size >= n, 30_000, `${n} subscriptions`);
  await events.ready();
}

const EMBEDDING = `subscription ($id: UUID) { documentEmbeddingChanged(rowId: $id) { operation documentRowId document { rowId title embeddingStatus } } }`;
const DOCUMENTS = `subscription { documentChanged { operation documentRowId document { rowId title } } }`;
const JOBS = `subscription { jobChanged { operation jobRowId job { rowId status jobType } } }`;

test('a client subscribed to its document sees EMBEDDED without polling; its jobs go pending → running → completed; another tenant on the same topics sees nothing of it', async () => {
  const acme = client({ authorization: `Bearer ${tokenFor('acme')}` });
  const beta = client({ authorization: `Bearer ${tokenFor('beta')}` });
  const acmeJobs = subscribe<{ jobChanged: { job: { status: string; jobType: string } | null } }>(acme.client, JOBS);
  const betaAll = [EMBEDDING, DOCUMENTS, JOBS].map((q) => subscribe(beta.client, q));
  await listening(4);

  const res = await h.graphql<{ ingestDocument: { document: { rowId: string; embeddingStatus: string } } }>(INGEST, {
    input: {
      title: 'live one',
      content: 'Subscriptions tell a client when its document is searchable. This text is longer than EMBED_SYNC_MAX_CHARS, so the worker embeds it.',
    },
  });
  expect(res.body.errors).toBeUndefined();
  const id = res.body.data!.ingestDocument.document.rowId;
  expect(res.body.data!.ingestDocument.document.embeddingStatus).toBe('PENDING');

  const mine = subscribe<{ documentEmbeddingChanged: { document: { embeddingStatus: string } | null } }>(acme.client, EMBEDDING, { id });
  await listening(5);
  // It may have been embedded already: then one more change of its text makes the worker embed it again.
  await h.until(
    async () => (await h.sql<{ s: string }>('select embedding_status::text as s from sheratan.documents where id = $1', [id]))[0]!.s === 'embedded',
    120_000,
    'the first embedding',
  );
  await h.until(
    async () => mine.events.some((e) => e.documentEmbeddingChanged.document?.embeddingStatus === 'EMBEDDED'),
    30_000,
    'the first EMBEDDED over the socket',
  );
  const heard = mine.events.length;
  await h.graphql(
    `mutation ($id: UUID!) { updateDocumentByRowId(input: { rowId: $id, documentPatch: { content: "Changed text: the worker embeds it again, and the subscriber hears PENDING, then EMBEDDED, without polling." } }) { document { rowId } } }`,
    { id },
  );
  // Two changes of status (embedded → pending, pending → embedded): two events, each the row as it is when read again.
  await h.until(async () => mine.events.length >= heard + 2, 120_000, 'two more events over the socket');
  const after = mine.events.slice(heard).map((e) => e.documentEmbeddingChanged.document?.embeddingStatus);
  expect(after).toHaveLength(2);
  expect(after[1]).toBe('EMBEDDED');
  expect(['PENDING', 'EMBEDDED']).toContain(after[0]);
  await h.until(async () => acmeJobs.events.some((e) => e.jobChanged.job?.status === 'completed'), 60_000, 'a completed job');
  const statuses = acmeJobs.events.filter((e) => e.jobChanged.job?.jobType === 'embed_document').map((e) => e.jobChanged.job!.status);
  expect(statuses).toContain('running');
  expect(statuses.indexOf('running')).toBeLessThan(statuses.lastIndexOf('completed'));

  // Beta's subscriptions are alive (its own document reaches them) and held nothing of acme's.
  await h.graphql(`mutation { createDocument(input: { document: { title: "beta's own", content: "" } }) { document { rowId } } }`, {}, 'beta');
  await h.until(async () => betaAll[1]!.events.length > 0, 30_000, "beta's own event");
  for (const sub of betaAll) {
    for (const e of sub.events) expect(JSON.stringify(e)).not.toContain(id);
    expect(sub.errors).toEqual([]);
  }
  expect(JSON.stringify(betaAll[1]!.events)).toContain("beta's own");
  await acme.client.dispose();
  await beta.client.dispose();
}, 300_000);

test('every tenant hears its own writes and no other tenant’s, whatever its name (a generator of tenants on the same topics)', async () => {
  const tenants = ['t-plain', 'with|bar|in it', 'ümlaut-ß-東京', 'x'.repeat(200), 'acme|', '|acme'];
  const sockets = tenants.map((t) => ({ tenant: t, ...client({ authorization: `Bearer ${tokenFor(t)}` }) }));
  const subs = sockets.map((s) => subscribe<{ documentChanged: { document: { title: string } | null; operation: string } }>(s.client, DOCUMENTS));
  const before = h.gateway.gateway.liveEvents.size;
  await listening(before >= tenants.length ? before : tenants.length);
  for (const t of tenants) {
    const r = await h.graphql(
      `mutation ($t: String!) { createDocument(input: { document: { title: $t, content: "" } }) { document { rowId } } }`,
      { t: `title of ${t}` },
      t,
    );
    expect(r.body.errors).toBeUndefined();
  }
  // A second write of each tenant, after all the first ones: once each socket
  // has its own, whatever of the others' first writes could have reached it
  // would have (events reach a socket in commit order). No waiting "long enough".
  for (const t of tenants) {
    const r = await h.graphql(
      `mutation ($t: String!) { createDocument(input: { document: { title: $t, content: "" } }) { document { rowId } } }`,
      { t: `after ${t}` },
      t,
    );
    expect(r.body.errors).toBeUndefined();
  }
  await h.until(
    async () => subs.every((s, i) => s.events.some((e) => e.documentChanged.document?.title === `after ${tenants[i]}`)),
    30_000,
    'each tenant its second event',
  );
  subs.forEach((s, i) => {
    expect(s.events.map((e) => e.documentChanged.document?.title)).toEqual([`title of ${tenants[i]}`, `after ${tenants[i]}`]);
  });
  await Promise.all(sockets.map((s) => s.client.dispose()));
}, 120_000);

test('urql’s subscription transport over graphql-ws hears a document being stored', async () => {
  const ws = createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${tokenFor('urql-tenant')}` },
    retryAttempts: 0,
  });
  const urql = new UrqlClient({
    url: `${h.gateway.url}/graphql`,
    exchanges: [
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  const seen: string[] = [];
  const { unsubscribe } = urql.subscription(gql(DOCUMENTS), {}).subscribe((result) => {
    const title = (result.data as { documentChanged?: { document?: { title: string } } } | undefined)?.documentChanged?.document?.title;
    if (title) seen.push(title);
  });
  await h.until(async () => h.gateway.gateway.liveEvents.size >= 1, 30_000, 'urql subscribed');
  await h.gateway.gateway.liveEvents.ready();
  await new Promise((r) => setTimeout(r, 300));
  await h.graphql(`mutation { createDocument(input: { document: { title: "seen by urql", content: "" } }) { document { rowId } } }`, {}, 'urql-tenant');
  await h.until(async () => seen.includes('seen by urql'), 30_000, 'urql to hear it');
  unsubscribe();
  await ws.dispose();
}, 60_000);

test('the token goes in connection_init and is checked as an HTTP token is: none 4401, bad or wrong 4403 naming why; an expired token closes the socket 4403', async () => {
  expect(await client(undefined).closed).toMatchObject({ code: 4401, reason: expect.stringMatching(/^UNAUTHENTICATED/) });
  expect(await client({ authorization: 'Bearer not-a-token' }).closed).toMatchObject({
    code: 4403,
    reason: expect.stringMatching(/^INVALID_TOKEN: the token is invalid/),
  });
  const foreign = jwt.sign({ role: 'sheratan_app', tenant: 'acme' }, 'another-secret-0123456789-0123456789', { expiresIn: '1h' });
  expect(await client({ authorization: `Bearer ${foreign}` }).closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/invalid signature/) });
  const expired = jwt.sign({ role: 'sheratan_app', tenant: 'acme', exp: Math.floor(Date.now() / 1000) - 5 }, h.config.jwtSecret!);
  expect(await client({ authorization: `Bearer ${expired}` }).closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/^TOKEN_EXPIRED/) });
  const superuser = jwt.sign({ role: 'postgres', tenant: 'acme' }, h.config.jwtSecret!, { expiresIn: '1h' });
  expect(await client({ authorization: `Bearer ${superuser}` }).closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/^FORBIDDEN_ROLE/) });

  // Valid for two seconds: it subscribes, then the socket is closed when the token expires.
  const short = client({ authorization: `Bearer ${tokenFor('short-lived', 'sheratan_app', 2)}` });
  const sub = subscribe(short.client, DOCUMENTS);
  const closed = await short.closed;
  expect(closed).toEqual({ code: 4403, reason: expect.stringMatching(/^TOKEN_EXPIRED/) });
  await sub.done;
}, 60_000);

test('limits: subscriptions per socket, sockets per tenant, message size; queries and mutations go over HTTP', async () => {
  const a = client({ authorization: `Bearer ${tokenFor('crowd')}` });
  const subs = [1, 2, 3, 4, 5].map(() => subscribe(a.client, DOCUMENTS));
  await subs[4]!.done;
  expect(subs[4]!.errors).toEqual([
    expect.objectContaining({
      extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
      message: expect.stringMatching(/at most 4 \(LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET\)/),
    }),
  ]);
  const query = subscribe(a.client, `query { __typename }`);
  await query.done;
  expect(query.errors).toEqual([expect.objectContaining({ extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })]);
  subs[0]!.stop();
  const again = subscribe(a.client, `query { __typename }`);
  await again.done;
  expect(again.errors).toEqual([
    expect.objectContaining({ extensions: { code: 'SUBSCRIPTIONS_ONLY' }, message: expect.stringMatching(/send queries over HTTP/) }),
  ]);

  // Three sockets per tenant: the fourth is told to try later; another tenant is not affected.
  const more = [client({ authorization: `Bearer ${tokenFor('crowd')}` }), client({ authorization: `Bearer ${tokenFor('crowd')}` })];
  for (const m of more) subscribe(m.client, DOCUMENTS);
  await h.until(async () => (h.gateway.gateway.live.stats().tenants.crowd ?? 0) === 3, 10_000, 'three sockets of crowd');
  const fourth = client({ authorization: `Bearer ${tokenFor('crowd')}` });
  expect(await fourth.closed).toMatchObject({ code: 1013, reason: expect.stringMatching(/^TOO_MANY_SOCKETS.*LIVE_MAX_SOCKETS_PER_TENANT/) });
  const other = client({ authorization: `Bearer ${tokenFor('not-crowd')}` });
  const fine = subscribe(other.client, DOCUMENTS);
  await h.until(async () => (h.gateway.gateway.live.stats().tenants['not-crowd'] ?? 0) === 1, 10_000, 'the other tenant');
  expect(fine.errors).toEqual([]);

  // A message above LIVE_MAX_MESSAGE_BYTES (4096) closes the socket (1009, message too big) before it is parsed.
  const big = subscribe(other.client, `subscription { documentChanged { document { ${'title '.repeat(1000)} } } }`);
  expect(await other.closed).toMatchObject({ code: 1009 });
  await big.done;

  await Promise.all([a, ...more, fourth, other].map((c) => c.client.dispose()));
  await h.until(async () => h.gateway.gateway.live.stats().tenants.crowd === undefined, 10_000, 'the sockets counted out');
}, 60_000);

test('a subscription whose events pile up unread is ended (SLOW_CONSUMER) and stops listening: nothing is buffered without bound', async () => {
  const live = new LiveEvents({ url: h.gateway.db.authUrl, maxQueued: 3 });
  try {
    const events = live.subscribe(liveTopic('document', null, 'slow'));
    const first = events.next();
    await live.ready();
    const owner = new pg.Client(h.gateway.db.ownerUrl);
    await owner.connect();
    const notify = (i: number, tenant = 'slow') =>
      owner.query('select pg_notify(sheratan_private.live_channel($1), $2)', [
        'slow',
        JSON.stringify({ kind: 'document', op: 'INSERT', id: `id-${i}`, tenant, embedding: true }),
      ]);
    try {
      // An event naming another tenant on this channel (an md5 collision) is not delivered either.
      await notify(-1, 'not-slow');
      await notify(0);
      // The first is taken as the consumer asked for it; then nobody reads: three wait, the fourth ends it.
      expect((await first).value).toMatchObject({ id: 'id-0' });
      for (let i = 1; i < 10; i++) await notify(i);
    } finally {
      await owner.end();
    }
    await h.until(async () => live.size === 0, 10_000, 'the slow subscription to be dropped');
    const ended = await events.next().then(
      () => null,
      (err: Error & { extensions?: unknown }) => err,
    );
    expect(ended?.message).toMatch(/fell more than 3 events behind \(LIVE_MAX_QUEUED_EVENTS\)/);
    expect(ended?.extensions).toEqual({ code: SLOW_CONSUMER });
    expect(await events.next()).toEqual({ done: true, value: undefined });
  } finally {
    await live.release();
  }
}, 60_000);
